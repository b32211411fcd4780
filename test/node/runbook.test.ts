import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { npmStart } from "./npm-start";

const run = promisify(execFile);
const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");

/** The README's "Leaked key runbook" block, with this `npm start`'s admin token and address, each numbered step's output marked. */
function runbookScript(base: string, adminToken: string): string {
  const section = readme.slice(readme.indexOf("## Leaked key runbook"));
  const block = /```bash\n([\s\S]*?)```/.exec(section)![1]!;
  return block
    .split("\n")
    .map((line) => {
      if (line.startsWith("ADMIN=")) return `ADMIN=${adminToken}`;
      if (line.startsWith("ZGATE=")) return `ZGATE=${base}`;
      const step = /^# (\d+)\./.exec(line);
      return step ? `echo "=== ${step[1]}"` : line;
    })
    .join("\n");
}

describe("README: Leaked key runbook", () => {
  let zgate: Awaited<ReturnType<typeof npmStart>>;
  beforeAll(async () => {
    zgate = await npmStart();
  });
  afterAll(() => zgate?.stop());

  it("runs top to bottom against npm start, each step showing what the README says", async () => {
    const started = Date.now();
    const { stdout } = await run("bash", ["-e", "-o", "pipefail", "-c", runbookScript(zgate.base, zgate.adminToken)], { timeout: 60_000 });
    expect(Date.now() - started).toBeLessThan(60_000);
    const steps = Object.fromEntries(
      stdout
        .split("=== ")
        .slice(1)
        .map((chunk) => {
          const [n, ...lines] = chunk.trim().split("\n");
          return [n, lines];
        }),
    ) as Record<string, string[]>;

    const found = JSON.parse(steps[1]![0]!);
    expect(found).toMatchObject({ account: "acct_drill", label: "ci deploy", status: "active" });
    expect(found.last_used_at).not.toBeNull();

    const usage = JSON.parse(steps[2]![0]!);
    expect(usage.addresses.length).toBeGreaterThanOrEqual(1);
    expect(usage.calls).toContainEqual(expect.objectContaining({ user_agent: "stranger/1.0", outcome: "admitted" }));

    const rolled = JSON.parse(steps[3]![0]!);
    expect(rolled.key).toMatch(/^zsky_live_[0-9A-Za-z]{36}$/);
    expect(Date.parse(rolled.old_key_ends_at)).toBeLessThanOrEqual(Date.now());

    const revoked = JSON.parse(steps[4]![0]!);
    expect(revoked.status).toBe("revoked");
    expect(revoked.revoked).toEqual([expect.objectContaining({ id: found.id, why: "leaked" })]);
    expect(revoked.kept).toEqual([{ id: rolled.successor, replaces: found.id, why: "rolled_by_admin" }]);

    expect(steps[5]).toEqual(["401"]);

    const audit = JSON.parse(steps[6]![0]!);
    expect(audit).toEqual(
      expect.arrayContaining([
        { actor: "admin:token", action: "key.revoke_leaked", reason: "pushed to a public repo", ticket: "SEC-1" },
        { actor: "admin:token", action: "key.roll", reason: "leaked", ticket: "SEC-1" },
      ]),
    );

    // The successor the customer was given works.
    const successor = await fetch(`${zgate.base}/zsky/v1/usage`, { headers: { "X-API-Key": rolled.key } });
    expect(successor.status).toBe(200);
  });
});
