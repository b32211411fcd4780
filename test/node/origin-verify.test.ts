import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  sharedDevGateway,
  startDevGateway,
  startRecordingOrigin,
  type DevGateway,
  type Received,
  type SharedDevGateway,
} from "./dev-gateway";

const root = new URL("../..", import.meta.url).pathname;

interface Check {
  verifier: string;
  method: string;
  target: string;
  headers: Record<string, string>;
  body: string;
  now?: number;
}
type Verdict = { ok: true; identity: Record<string, string | number> } | { ok: false; reason: string };

/** Runs the checks through examples/origin-verify/zgate_verify.py (test/node/origin-verify-driver.py). */
function python(verifiers: Record<string, string[]>, checks: Check[]): Promise<Verdict[]> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      "python3",
      [join(root, "test", "node", "origin-verify-driver.py")],
      { timeout: 30_000 },
      (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(JSON.parse(stdout) as Verdict[])),
    );
    child.stdin!.end(JSON.stringify({ verifiers, checks }));
  });
}

/** A recorded request as the driver takes it: the raw target, the headers as received, the body. */
function asCheck(verifier: string, r: Received, change: Partial<Check> = {}): Check {
  const headers = Object.fromEntries(Object.entries(r.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(", ") : String(v)]));
  return { verifier, method: r.method, target: r.url, headers, body: r.body.toString("base64"), ...change };
}

/**
 * The Python verifier against requests the gateway really signed: two gateways under
 * `wrangler dev`, one signing with the old secret (the run's shared dev gateway) and one
 * with the new (a rotation), each in front of an origin that records the raw requests.
 */
describe("examples/origin-verify (Python) on requests zgate signed", () => {
  let oldSecret = "";
  const newSecret = randomBytes(32).toString("hex");
  let shared: SharedDevGateway;
  let origin: Awaited<ReturnType<typeof startRecordingOrigin>>;
  let rotated: DevGateway;
  const signed: Record<"old" | "new" | "keyed", { received: Received; requestId: string }> = {} as never;
  let keyId = "";
  const body = JSON.stringify({ email: "demo@zakgt.test", password: "demo-password" });

  /** A login through the gateway at `port`, with a query that stays percent-encoded and a body: both are signed. */
  const login = (port: number) =>
    fetch(`http://127.0.0.1:${port}/zakgt/api/v1/auth/login?next=%2Fhome%20page&x=1`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body,
    });

  beforeAll(async () => {
    origin = await startRecordingOrigin();
    [shared, rotated] = await Promise.all([sharedDevGateway(), startDevGateway(origin.url, newSecret)]);
    oldSecret = shared.signingSecret;
    const before = await login(shared.port);
    expect(before.status).toBe(200);
    const beforeId = before.headers.get("X-Request-Id")!;
    signed.old = { received: await shared.received(beforeId), requestId: beforeId };
    const after = await login(rotated.port);
    expect(after.status).toBe(200);
    signed.new = { received: origin.received.at(-1)!, requestId: after.headers.get("X-Request-Id")! };
    // A keyed call: the signed identity carries the account and the key.
    const created = await fetch(`${shared.base}/admin/v1/keys`, {
      method: "POST",
      headers: { Authorization: `Bearer ${shared.adminToken}`, "Content-Type": "application/json" },
      body: JSON.stringify({ product: "zappway", account: "org_verify" }),
    });
    expect(created.status).toBe(201);
    const key = (await created.json()) as { id: string; key: string };
    keyId = key.id;
    const response = await fetch(`${shared.base}/zappway/api/v1/agents`, { headers: { Authorization: `Bearer ${key.key}` } });
    expect(response.status).toBe(200);
    const requestId = response.headers.get("X-Request-Id")!;
    signed.keyed = { received: await shared.received(requestId), requestId };
  });

  afterAll(async () => {
    await rotated?.stop();
    await origin?.close();
  });

  it("accepts a signed request once and returns who zgate vouches for; refuses its replay", async () => {
    const { received, requestId } = signed.old;
    expect(received.url).toBe("/api/v1/auth/login?next=%2Fhome%20page&x=1");
    const [first, replay] = await python({ origin: [oldSecret] }, [asCheck("origin", received), asCheck("origin", received)]);
    expect(first).toEqual({
      ok: true,
      identity: expect.objectContaining({
        product: "zakgt",
        account: "",
        user: "",
        request_id: requestId,
        nonce: received.headers["x-zgate-nonce"],
      }),
    });
    expect(replay).toEqual({ ok: false, reason: "nonce already used" });
  });

  it("returns the account and key a keyed call was made with; a forged account is refused", async () => {
    const { received, requestId } = signed.keyed;
    expect(received.url).toBe("/api/v1/agents");
    const forged = asCheck("origin", received);
    forged.headers["x-zgate-account"] = "org_other";
    const [verdict, refused] = await python({ origin: [oldSecret] }, [asCheck("origin", received), forged]);
    expect(verdict).toEqual({
      ok: true,
      identity: expect.objectContaining({ product: "zappway", account: "org_verify", key_id: keyId, request_id: requestId }),
    });
    expect(refused).toEqual({ ok: false, reason: "bad signature" });
  });

  it("refuses a tampered body, a tampered signed header or path, a forged signature, a stale or future timestamp", async () => {
    const { received } = signed.old;
    const timestamp = Number(received.headers["x-zgate-timestamp"]);
    const forged = asCheck("a", received);
    forged.headers["x-zgate-signature"] = `v2=${"0".repeat(64)}`;
    const asAccount = asCheck("a", received);
    asAccount.headers["x-zgate-account"] = "usr_admin";
    const verdicts = await python({ a: [oldSecret] }, [
      asCheck("a", received, { body: Buffer.from('{"email":"other@zakgt.test"}').toString("base64") }),
      asAccount,
      asCheck("a", received, { target: "/api/v1/auth/login?next=/home page&x=1" }),
      asCheck("a", received, { method: "PUT" }),
      forged,
      asCheck("a", received, { now: timestamp + 301 }),
      asCheck("a", received, { now: timestamp - 301 }),
      // None of the refusals used up the nonce: the untouched request at the edge of the window passes.
      asCheck("a", received, { now: timestamp + 299 }),
    ]);
    expect(verdicts.map((v) => (v.ok ? "ok" : v.reason))).toEqual([
      "content digest does not match the body",
      "bad signature",
      "bad signature",
      "bad signature",
      "bad signature",
      "timestamp outside the 5 minute window",
      "timestamp outside the 5 minute window",
      "ok",
    ]);
  });

  it("rotation: an origin holding new and old accepts both gateways; with the old removed, what it signed is refused", async () => {
    const verdicts = await python({ both: [newSecret, oldSecret], newOnly: [newSecret], oldOnly: [oldSecret] }, [
      asCheck("both", signed.old.received),
      asCheck("both", signed.new.received),
      asCheck("newOnly", signed.old.received),
      asCheck("newOnly", signed.new.received),
      // An origin not given the new secret yet refuses the rotated gateway: origins move first.
      asCheck("oldOnly", signed.new.received),
    ]);
    expect(verdicts.map((v) => (v.ok ? "ok" : v.reason))).toEqual(["ok", "ok", "unknown signing key id", "ok", "unknown signing key id"]);
  });

  it("the FastAPI example is valid Python (run only where FastAPI is installed: it is never required)", async () => {
    const source = join(root, "examples", "origin-verify", "fastapi_example.py");
    const parsed = await new Promise<string>((resolve, reject) =>
      execFile("python3", ["-c", "import ast, sys; ast.parse(open(sys.argv[1]).read()); print('parsed')", source], (err, stdout) =>
        err ? reject(err) : resolve(stdout.trim()),
      ),
    );
    expect(parsed).toBe("parsed");
  });

  it("the key id only picks the secret: naming the other one does not help a forged request", async () => {
    const swapped = asCheck("both", signed.old.received);
    swapped.headers["x-zgate-signature-kid"] = signed.new.received.headers["x-zgate-signature-kid"] as string;
    const [verdict] = await python({ both: [newSecret, oldSecret] }, [swapped]);
    expect(verdict).toEqual({ ok: false, reason: "bad signature" });
  });
});
