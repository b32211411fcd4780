import type { ConsoleSessionRecord } from "../limits/guard-protocol";

/** `console_session:<SHA-256 of the session id>` -> ConsoleSessionRecord, in the admin guard's synchronous KV. */
const SESSION = "console_session:";

/**
 * The security console's signed-in sessions (src/console/session.ts), in the admin guard:
 * a session is good only while its row is here, so signing out (its row) or out
 * everywhere (every row of its identity) ends it at once, copies of its cookie included.
 * Only signed-in sessions have a row (a sign-in needs the admin token), so there are
 * few; expired ones are dropped when a session opens.
 */
export class ConsoleSessions {
  constructor(private readonly kv: SyncKvStorage) {}

  open(id: string, record: ConsoleSessionRecord, now: number): void {
    for (const [key, other] of this.kv.list<ConsoleSessionRecord>({ prefix: SESSION })) {
      if (other.expiresAt <= now) this.kv.delete(key);
    }
    this.kv.put(SESSION + id, record);
  }

  live(id: string, now: number): boolean {
    const record = this.kv.get<ConsoleSessionRecord>(SESSION + id);
    return record !== undefined && record.expiresAt > now;
  }

  close(id: string): boolean {
    return this.kv.delete(SESSION + id);
  }

  /** Ends every session of `identity`; returns how many were live. */
  closeAll(identity: string, now: number): number {
    let live = 0;
    for (const [key, record] of this.kv.list<ConsoleSessionRecord>({ prefix: SESSION })) {
      if (record.identity !== identity) continue;
      if (record.expiresAt > now) live++;
      this.kv.delete(key);
    }
    return live;
  }
}
