import type { AccountPlan } from "../limits/types";

interface PlanRow {
  plan: string | null;
  windows: string | null;
  [column: string]: SqlStorageValue;
}

/**
 * The account's own plan and window limits (admin `PUT /accounts/{product}/{account}/plan`),
 * in its guard's storage: one row, or none while no admin has set one. Read on every
 * admission, so it is mirrored in memory; this object is its only writer.
 */
export class AccountPlanStore {
  /** undefined: not read yet; null: none set. */
  private cached: AccountPlan | null | undefined;

  // Its table is created by the guard's migrations (schema.ts).
  constructor(private readonly sql: SqlStorage) {}

  get(): AccountPlan | null {
    if (this.cached === undefined) {
      const row = this.sql.exec<PlanRow>("SELECT plan, windows FROM account_plan").toArray()[0];
      this.cached = row ? { plan: row.plan, windows: row.windows ? (JSON.parse(row.windows) as AccountPlan["windows"]) : null } : null;
    }
    return this.cached;
  }

  /** Replaces the account's plan; a plan of null with no windows removes it. */
  set(plan: AccountPlan): void {
    if (plan.plan === null && !plan.windows) {
      this.sql.exec("DELETE FROM account_plan");
      this.cached = null;
      return;
    }
    this.sql.exec(
      "INSERT OR REPLACE INTO account_plan (id, plan, windows) VALUES (1, ?, ?)",
      plan.plan,
      plan.windows ? JSON.stringify(plan.windows) : null,
    );
    this.cached = plan;
  }
}
