import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { restartableGateway, runtimeOf, type DevGateway } from "./dev-gateway";

/**
 * The usage log's loss bound (docs/scale.md): an isolate holds at most USAGE_FLUSH_MS of
 * calls before appending them to their account's usage log, so a runtime that stops loses
 * only calls answered within that long (plus an append in flight) before it stopped. Here
 * the runtime (workerd, with wrangler dev's bindings and settings:
 * test/node/gateway-runtime.mjs) is stopped under load, by SIGTERM and by SIGKILL, started
 * again on the same state, and every call the client saw answered 200 is looked for in the
 * key's exported history. (A restart on kept state (restartableGateway) starts on the data
 * the stopped runtime left, with nothing to copy or migrate.)
 */
const root = new URL("../..", import.meta.url).pathname;
/** npm start's USAGE_FLUSH_MS (wrangler.toml's development vars). */
const FLUSH_MS = Number(/^USAGE_FLUSH_MS = "(\d+)"/m.exec(readFileSync(join(root, "wrangler.toml"), "utf8"))![1]);
/** An append under way when the runtime stops: its round trip to the usage log object. */
const APPEND_IN_FLIGHT_MS = 1_000;
/**
 * Load runs at least this long (more than one flush, so the oldest calls must have been
 * appended) and until MIN_ANSWERED calls were answered: on a loaded machine the runtime
 * answers fewer a second, so a fixed stretch could end with too few calls to tell anything.
 */
const MIN_LOAD_MS = 3_000;
const MAX_LOAD_MS = 30_000;
const MIN_ANSWERED = 100;
const CLIENTS = 6;
/**
 * Each client's pause after an answer: some 100 calls a second in all, several in flight at
 * any moment. Flat out the runtime answered 330-360 a second, keeping both cores of the
 * suite's machine busy for what more calls do not add to the bound's check.
 */
const PAUSE_MS = 50;

interface Answered {
  requestId: string;
  /** When the client had its 200 (ms). */
  at: number;
}

describe("usage recorded across a stop of the runtime under load", () => {
  const kept = restartableGateway();
  let gateway: DevGateway | undefined;
  afterAll(() => kept.close());

  const admin = (gw: DevGateway, path: string, init: RequestInit = {}) =>
    fetch(`${gw.base}/admin/v1${path}`, {
      ...init,
      headers: { Authorization: `Bearer ${gw.adminToken}`, "Content-Type": "application/json", ...init.headers },
    });
  /** Every request id in the key's history, through the export (10,000 a file). */
  async function recorded(gw: DevGateway, keyId: string): Promise<Set<string>> {
    const ids = new Set<string>();
    let path = `/keys/${keyId}/usage/export?format=ndjson`;
    for (;;) {
      const response = await admin(gw, path);
      expect(response.status).toBe(200);
      for (const line of (await response.text()).split("\n").filter(Boolean))
        ids.add((JSON.parse(line) as { request_id: string }).request_id);
      const next = response.headers.get("zgate-next-cursor");
      if (!next) return ids;
      path = `/keys/${keyId}/usage/export?format=ndjson&cursor=${next}`;
    }
  }

  it.each(["SIGTERM", "SIGKILL"] as const)(
    "%s: every call answered before the last USAGE_FLUSH_MS (and an append in flight) is in the key's history",
    async (signal) => {
      gateway ??= await kept.start();
      const gw = gateway;
      const created = await admin(gw, "/keys", {
        method: "POST",
        body: JSON.stringify({ product: "zappway", account: `acct_loss_${signal}`, plan: "enterprise" }),
      });
      expect(created.status).toBe(201);
      const { id, key } = (await created.json()) as { id: string; key: string };
      // Far above what the load reaches: every call is admitted, so each one answered is one the history must hold.
      const plan = await admin(gw, `/accounts/zappway/acct_loss_${signal}/plan`, {
        method: "PUT",
        body: JSON.stringify({ plan: null, limit_override: { windows: { plan_rate: { limit: 1_000_000, window_seconds: 60 } } } }),
      });
      expect(plan.status).toBe(200);

      const answered: Answered[] = [];
      let sent = 0;
      /** Calls refused by a limit: none, or the check below would say nothing of them. */
      let refused = 0;
      let running = true;
      const clients = Array.from({ length: CLIENTS }, async () => {
        while (running) {
          const requestId = `loss-${signal}-${sent++}`;
          // A call cut by the stop (its connection or its body) counts as unanswered.
          const status = await fetch(`${gw.base}/zappway/api/v1/agents`, {
            headers: { Authorization: `Bearer ${key}`, "X-Request-Id": requestId },
          })
            .then(async (r) => (await r.arrayBuffer(), r.status))
            .catch(() => 0);
          if (status === 200) answered.push({ requestId, at: Date.now() });
          else if (status === 429) refused++;
          else if (status === 0) return;
          await new Promise((r) => setTimeout(r, PAUSE_MS));
        }
      });
      const loadStarted = Date.now();
      while (Date.now() - loadStarted < MIN_LOAD_MS || (answered.length <= MIN_ANSWERED && Date.now() - loadStarted < MAX_LOAD_MS))
        await new Promise((r) => setTimeout(r, 100));
      const runtime = runtimeOf(gw);
      expect(runtime.length).toBeGreaterThan(0);
      const stoppedAt = Date.now();
      for (const pid of runtime) process.kill(pid, signal);
      await Promise.race([Promise.all(clients), new Promise((r) => setTimeout(r, 10_000))]);
      running = false;
      // Not reused by a retry if the restart fails: that one starts its own.
      gateway = undefined;
      gateway = await kept.start(); // stops what is left of the stopped one first

      const history = await recorded(gateway, id);
      const lost = answered.filter((a) => !history.has(a.requestId));
      const perSecond = answered.filter((a) => a.at <= stoppedAt).length / ((stoppedAt - loadStarted) / 1000);
      console.log(
        JSON.stringify({ signal, answered: answered.length, recorded: history.size, lost: lost.length, perSecond, flushMs: FLUSH_MS }),
      );
      expect(answered.length).toBeGreaterThan(MIN_ANSWERED);
      expect(refused).toBe(0);
      // Only the newest calls may be lost, and at most USAGE_FLUSH_MS (and an append in flight) of them.
      for (const call of lost) expect(stoppedAt - call.at, call.requestId).toBeLessThanOrEqual(FLUSH_MS + APPEND_IN_FLIGHT_MS);
      expect(lost.length).toBeLessThanOrEqual(Math.ceil((perSecond * (FLUSH_MS + APPEND_IN_FLIGHT_MS)) / 1000));
    },
    240_000,
  );
});
