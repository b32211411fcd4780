import { execFile, execFileSync } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { memoryReplayGuard, zgateVerifier } from "../../examples/origin-verify/zgate_verify";
import { newAssertionKey } from "../../src/forward/assertion-keys";
import {
  sharedDevGateway,
  startDevGateway,
  startRecordingOrigin,
  type DevGateway,
  type Received,
  type SharedDevGateway,
} from "./dev-gateway";

const root = new URL("../..", import.meta.url).pathname;

/** The first python3 with PyJWT: Debian's python3-jwt installs it for /usr/bin/python3 (.ci/run does, where it is missing). */
const python3 = ["python3", "/usr/bin/python3"].find((bin) => {
  try {
    execFileSync(bin, ["-c", "import jwt, cryptography"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
});

interface VerifierOptions {
  audience: string;
  origin: string;
  jwks_url: string;
}
interface Check {
  verifier: string;
  method: string;
  target: string;
  assertion: string;
  body: string;
  now?: number;
}
type Verdict = { ok: true; identity: Record<string, string | null> } | { ok: false; reason: string };

/** Runs the checks through examples/origin-verify/zgate_verify.py (test/node/origin-verify-driver.py). */
function python(verifiers: Record<string, VerifierOptions>, checks: Check[]): Promise<Verdict[]> {
  if (!python3) throw new Error("no python3 with PyJWT: apt-get install python3-jwt python3-cryptography");
  return new Promise((resolve, reject) => {
    const child = execFile(python3, [join(root, "test", "node", "origin-verify-driver.py")], { timeout: 30_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(JSON.parse(stdout) as Verdict[]),
    );
    child.stdin!.end(JSON.stringify({ verifiers, checks }));
  });
}

/** A recorded request as both verifiers take it: the raw target, the assertion, the body. */
function asCheck(verifier: string, r: Received, change: Partial<Check> = {}): Check {
  return {
    verifier,
    method: r.method,
    target: r.url,
    assertion: String(r.headers["x-zgate-assertion"]),
    body: r.body.toString("base64"),
    ...change,
  };
}

/** The same check through examples/origin-verify/zgate_verify.ts. */
async function node(verify: ReturnType<typeof zgateVerifier>, check: Check): Promise<Verdict> {
  try {
    const identity = await verify({
      method: check.method,
      target: check.target,
      assertion: check.assertion,
      body: Buffer.from(check.body, "base64"),
      now: check.now === undefined ? undefined : new Date(check.now * 1000),
    });
    return { ok: true, identity: identity as unknown as Record<string, string | null> };
  } catch (err) {
    return { ok: false, reason: (err as { reason: string }).reason };
  }
}

const claims = (r: Received) =>
  JSON.parse(Buffer.from(String(r.headers["x-zgate-assertion"]).split(".")[1]!, "base64url").toString()) as Record<string, number>;

/**
 * Both example verifiers against requests the gateway really signed: the run's shared
 * gateway (test/node/gateway-runtime.mjs) in front of an origin that records raw requests, its keys
 * fetched from its own /.well-known/jwks.json; and a second gateway with a key the
 * first never published (an unknown kid).
 */
describe("examples/origin-verify (Python, PyJWT; Node, jose) on requests zgate signed", () => {
  let shared: SharedDevGateway;
  let foreign: DevGateway;
  let foreignOrigin: Awaited<ReturnType<typeof startRecordingOrigin>>;
  const signed = {} as Record<"login" | "keyed" | "foreign", { received: Received; requestId: string }>;
  let keyId = "";
  const body = JSON.stringify({ email: "demo@zakgt.test", password: "demo-password" });
  const verifiers = () => ({
    zakgt: { audience: "zakgt", origin: shared.originUrl, jwks_url: shared.jwksUrl },
    zappway: { audience: "zappway", origin: shared.originUrl, jwks_url: shared.jwksUrl },
    zsky: { audience: "zsky", origin: shared.originUrl, jwks_url: shared.jwksUrl },
  });
  const nodeVerifier = (name: keyof ReturnType<typeof verifiers>) => {
    const { audience, origin, jwks_url } = verifiers()[name];
    return zgateVerifier({ keys: new URL(jwks_url), audience, origin });
  };

  /** A login through a gateway, with a query that stays percent-encoded and a body: both are bound. */
  const login = (base: string) =>
    fetch(`${base}/zakgt/api/v1/auth/login?next=%2Fhome%20page&x=1`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body,
    });

  beforeAll(async () => {
    foreignOrigin = await startRecordingOrigin();
    [shared, foreign] = await Promise.all([sharedDevGateway(), startDevGateway(foreignOrigin.url, { x1: newAssertionKey() })]);
    const before = await login(shared.base);
    expect(before.status).toBe(200);
    const loginId = before.headers.get("X-Request-Id")!;
    signed.login = { received: await shared.received(loginId), requestId: loginId };
    const other = await login(foreign.base);
    expect(other.status).toBe(200);
    signed.foreign = { received: foreignOrigin.received.at(-1)!, requestId: other.headers.get("X-Request-Id")! };
    // A keyed call: the assertion names the account and the key.
    const created = await fetch(`${shared.base}/admin/v1/keys`, {
      method: "POST",
      headers: { Authorization: `Bearer ${shared.adminToken}`, "Content-Type": "application/json" },
      body: JSON.stringify({ product: "zappway", account: "org_verify" }),
    });
    expect(created.status).toBe(201);
    const key = (await created.json()) as { id: string; key: string };
    keyId = key.id;
    const response = await fetch(`${shared.base}/zappway/api/v1/agents?page=2`, { headers: { Authorization: `Bearer ${key.key}` } });
    expect(response.status).toBe(200);
    const requestId = response.headers.get("X-Request-Id")!;
    signed.keyed = { received: await shared.received(requestId), requestId };
  });

  afterAll(async () => {
    await foreign?.stop();
    await foreignOrigin?.close();
  });

  it("the gateway serves its public keys, cacheable, and nothing secret", async () => {
    const response = await fetch(shared.jwksUrl);
    expect(response.headers.get("cache-control")).toBe("public, max-age=300");
    const { keys } = (await response.json()) as { keys: Record<string, string>[] };
    expect(keys).toEqual([{ kty: "OKP", crv: "Ed25519", x: expect.stringMatching(/^[\w-]{43}$/), kid: "g1", alg: "EdDSA", use: "sig" }]);
  });

  it("accepts a request once and returns who zgate vouches for; refuses its replay", async () => {
    const { received, requestId } = signed.login;
    expect(received.url).toBe("/api/v1/auth/login?next=%2Fhome%20page&x=1");
    const [first, replay] = await python(verifiers(), [asCheck("zakgt", received), asCheck("zakgt", received)]);
    expect(first).toEqual({
      ok: true,
      identity: { request_id: requestId, jti: expect.any(String), subject: null, account: null, user: null, key_id: null },
    });
    expect(replay).toEqual({ ok: false, reason: "replayed" });
    const verify = nodeVerifier("zakgt");
    expect(await node(verify, asCheck("zakgt", received))).toEqual({ ok: true, identity: expect.objectContaining({ requestId }) });
    expect(await node(verify, asCheck("zakgt", received))).toEqual({ ok: false, reason: "replayed" });
  });

  it("returns the account and key of a keyed call; the key id is its subject", async () => {
    const { received, requestId } = signed.keyed;
    expect(received.url).toBe("/api/v1/agents?page=2");
    const [verdict] = await python(verifiers(), [asCheck("zappway", received)]);
    expect(verdict).toEqual({
      ok: true,
      identity: { request_id: requestId, jti: expect.any(String), subject: keyId, account: "org_verify", user: null, key_id: keyId },
    });
    expect(await node(nodeVerifier("zappway"), asCheck("zappway", received))).toEqual({
      ok: true,
      identity: expect.objectContaining({ subject: keyId, account: "org_verify", keyId, requestId }),
    });
  });

  it("refuses another audience, a changed body, path, query or method, an expired one and an unknown kid", async () => {
    const { received } = signed.login;
    const iat = claims(received).iat!;
    const checks = (verifier: "zakgt" | "zsky" | "zappway") => [
      asCheck("zsky", received),
      asCheck("zappway", received),
      asCheck(verifier, received, { body: Buffer.from('{"email":"other@zakgt.test"}').toString("base64") }),
      asCheck(verifier, received, { target: "/api/v1/auth/register?next=%2Fhome%20page&x=1" }),
      asCheck(verifier, received, { target: "/api/v1/auth/login?next=%2Fadmin&x=1" }),
      asCheck(verifier, received, { method: "PUT" }),
      asCheck(verifier, received, { now: iat + 60 + 31 }),
      asCheck(verifier, signed.foreign.received),
      // None of the refusals used up the jti: the untouched request at the edge of its life passes.
      asCheck(verifier, received, { now: iat + 60 + 29 }),
    ];
    expect((await python(verifiers(), checks("zakgt"))).map((v) => (v.ok ? "ok" : v.reason))).toEqual([
      "minted for another audience",
      "minted for another audience",
      "body does not match",
      "URL does not match",
      "query does not match",
      "method does not match",
      "expired",
      "unknown key",
      "ok",
    ]);
    const byNode = { zakgt: nodeVerifier("zakgt"), zsky: nodeVerifier("zsky"), zappway: nodeVerifier("zappway") };
    const nodeVerdicts = [];
    for (const check of checks("zakgt")) nodeVerdicts.push(await node(byNode[check.verifier as keyof typeof byNode], check));
    expect(nodeVerdicts.map((v) => (v.ok ? "ok" : v.reason))).toEqual([
      "invalid assertion: ERR_JWT_CLAIM_VALIDATION_FAILED (aud)",
      "invalid assertion: ERR_JWT_CLAIM_VALIDATION_FAILED (aud)",
      "body does not match",
      "URL does not match",
      "query does not match",
      "method does not match",
      "invalid assertion: ERR_JWT_EXPIRED (exp)",
      "invalid assertion: ERR_JWKS_NO_MATCHING_KEY",
      "ok",
    ]);
  });

  it("each in-memory replay guard refuses an id until it expired, then forgets it", () => {
    // first use of "a" (until 100), its replay, "b" (until 200), then at 150: "a" forgotten, "b" not.
    const steps: [string, number, number][] = [
      ["a", 100, 10],
      ["a", 100, 50],
      ["b", 200, 60],
      ["a", 300, 150],
      ["b", 200, 150],
    ];
    const expected = [true, false, true, true, false];
    const node = memoryReplayGuard();
    expect(steps.map(([jti, until, now]) => node.firstUse(jti, until, now))).toEqual(expected);
    const python = execFileSync(
      python3 ?? "python3",
      [
        "-c",
        "import json, sys; sys.path.insert(0, sys.argv[1]); from zgate_verify import MemoryReplayGuard; g = MemoryReplayGuard(); print(json.dumps([g.first_use(*step) for step in json.loads(sys.argv[2])]))",
        join(root, "examples", "origin-verify"),
        JSON.stringify(steps),
      ],
      { encoding: "utf8" },
    );
    expect(JSON.parse(python)).toEqual(expected);
  });

  it("the FastAPI example is valid Python (run only where FastAPI is installed: it is never required)", async () => {
    const source = join(root, "examples", "origin-verify", "fastapi_example.py");
    const parsed = execFileSync(python3 ?? "python3", [
      "-c",
      "import ast, sys; ast.parse(open(sys.argv[1]).read()); print('parsed')",
      source,
    ]);
    expect(parsed.toString().trim()).toBe("parsed");
  });
});
