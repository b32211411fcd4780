import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env";
import { migrate, type Migration } from "../guard/schema";
import type { ProductId } from "../products/types";
import * as clock from "../util/clock";
import { usageHour } from "./usage-client";
import type { UsageAccount } from "./usage-log-object";

/**
 * Which accounts a client address called, by the hour: what the search across accounts
 * (24 hours, src/usage/usage-history.ts) asks before it asks each account's usage log for
 * the calls. Sharded by the address's hash over ADDRESS_INDEXES objects (`addr|<n>`, src/usage/usage-client.ts;
 * binding USAGE_ADDRESSES), so no object takes every account's addresses. A usage log tells
 * its index each address once an hour (src/usage/usage-log-object.ts): one row per
 * (address, hour, account), kept KEEP_HOURS.
 */
/** Hours an entry is kept: the 24 hours a search across accounts reaches, and the hour it starts in. */
const KEEP_HOURS = 26;
const HOUR_MS = 3_600_000;

const MIGRATIONS: readonly Migration[] = [
  // 1: the starting schema.
  (sql) =>
    sql.exec(`CREATE TABLE seen (
      address TEXT NOT NULL, hour INTEGER NOT NULL, product TEXT NOT NULL, account TEXT NOT NULL,
      PRIMARY KEY (address, hour, product, account)
    ) WITHOUT ROWID`),
];

export interface AccountsQuery {
  /** One address (as recorded); none: every address. */
  address?: string;
  product?: ProductId;
  since: number;
  until: number;
  limit: number;
}

export class UsageAddressIndex extends DurableObject<Env> {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    migrate(ctx.storage, MIGRATIONS);
  }

  /** An account's calls from these addresses in these hours. */
  async note(account: UsageAccount, seen: [address: string, hour: number][]): Promise<void> {
    for (const [address, hour] of seen)
      this.sql.exec(
        "INSERT OR IGNORE INTO seen (address, hour, product, account) VALUES (?, ?, ?, ?)",
        address,
        hour,
        account.product,
        account.accountId,
      );
    if ((await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(clock.now() + HOUR_MS);
  }

  /** The accounts with calls (from the address) in the range, at most `limit`. */
  accounts(query: AccountsQuery): UsageAccount[] {
    const args: (string | number)[] = [usageHour(query.since), usageHour(query.until)];
    let where = "hour >= ? AND hour <= ?";
    if (query.address !== undefined) ((where += " AND address = ?"), args.push(query.address));
    if (query.product !== undefined) ((where += " AND product = ?"), args.push(query.product));
    return this.sql
      .exec<{ product: ProductId; account: string }>(
        `SELECT DISTINCT product, account FROM seen WHERE ${where} ORDER BY product, account LIMIT ?`,
        ...args,
        query.limit,
      )
      .toArray()
      .map((r) => ({ product: r.product, accountId: r.account }));
  }

  /** Hourly: forgets what is past KEEP_HOURS; sleeps once nothing is left. */
  override async alarm(): Promise<void> {
    this.sql.exec("DELETE FROM seen WHERE hour < ?", usageHour(clock.now()) - KEEP_HOURS);
    const left = this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM (SELECT 1 FROM seen LIMIT 1)").one().n;
    if (left > 0) await this.ctx.storage.setAlarm(clock.now() + HOUR_MS);
  }
}
