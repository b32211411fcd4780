import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Ratelimit } from "@upstash/ratelimit";
import { Redis } from "@upstash/redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRedis, type RunningRedis } from "./redis-server";
import { parseReply, RespClient, RespError } from "./resp-client";
import { startUpstashRestServer, type UpstashRestServer } from "./upstash-rest-server";

const TOKEN = "test-upstash-token";
const b64 = (text: string) => Buffer.from(text).toString("base64");

let redis: RunningRedis;
let rest: UpstashRestServer;

beforeAll(async () => {
  redis = await startRedis();
  rest = await startUpstashRestServer({ redisPort: redis.port, token: TOKEN });
});

afterAll(async () => {
  await rest?.close();
  await redis?.stop();
});

async function post(path: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(rest.url + path, {
    method: "POST",
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as unknown };
}

describe("RESP client", () => {
  it("parses nested and null arrays, null bulk strings, and waits for incomplete replies", () => {
    const reply = Buffer.from("*4\r\n*2\r\n:1\r\n+OK\r\n*-1\r\n$-1\r\n$3\r\nabc\r\n");
    expect(parseReply(reply)).toEqual({ value: [[1, "OK"], null, null, Buffer.from("abc")], next: reply.length });
    expect(parseReply(reply.subarray(0, reply.length - 3))).toBeUndefined();
    expect(parseReply(Buffer.from("-ERR nope\r\n"))?.value).toEqual(new RespError("ERR nope"));
  });

  it("maps pipelined replies to their commands in order", async () => {
    const client = await RespClient.connect(redis.port);
    try {
      const replies = await Promise.all([
        client.send(["SET", "resp:n", "0"]),
        ...Array.from({ length: 50 }, () => client.send(["INCR", "resp:n"])),
        client.send(["HGET", "resp:n", "field"]),
        client.send(["GET", "resp:missing"]),
      ]);
      expect(replies.slice(0, 51)).toEqual(["OK", ...Array.from({ length: 50 }, (_, i) => i + 1)]);
      expect(replies[51]).toBeInstanceOf(RespError);
      expect((replies[51] as RespError).message).toMatch(/^WRONGTYPE/);
      expect(replies[52]).toBeNull();
    } finally {
      await client.close();
    }
  });
});

describe("startRedis", () => {
  it("says which Debian package to install when redis-server is missing", async () => {
    const path = process.env.PATH;
    const empty = mkdtempSync(join(tmpdir(), "zgate-no-redis-"));
    process.env.PATH = empty;
    try {
      await expect(startRedis()).rejects.toThrow(/Debian package `redis-server`/);
    } finally {
      process.env.PATH = path;
      rmSync(empty, { recursive: true });
    }
  });
});

describe("Upstash REST protocol", () => {
  it("refuses requests without the bearer token", async () => {
    for (const authorization of [undefined, "Bearer wrong-token"]) {
      const res = await fetch(rest.url, {
        method: "POST",
        headers: authorization ? { authorization } : {},
        body: JSON.stringify(["PING"]),
      });
      expect(res.status).toBe(401);
      expect(await res.json()).toEqual({ error: "Unauthorized" });
    }
  });

  it("runs a single command, converting JSON numbers to strings", async () => {
    expect(await post("/", ["SET", "single:n", 5])).toEqual({ status: 200, body: { result: "OK" } });
    expect(await post("/", ["INCRBY", "single:n", 2])).toEqual({ status: 200, body: { result: 7 } });
    expect(await post("/", ["GET", "single:n"])).toEqual({ status: 200, body: { result: "7" } });
    expect(await post("/", ["GET", "single:missing"])).toEqual({ status: 200, body: { result: null } });
  });

  it("answers a Redis error with 400", async () => {
    await post("/", ["SET", "error:text", "not a number"]);
    expect(await post("/", ["INCR", "error:text"])).toEqual({
      status: 400,
      body: { error: "ERR value is not an integer or out of range" },
    });
  });

  it("runs a pipeline with one reply per command", async () => {
    const res = await post("/pipeline", [
      ["SET", "pipe:a", "1"],
      ["INCR", "pipe:a"],
      ["HGET", "pipe:a", "field"],
      ["RPUSH", "pipe:list", "x", "y"],
      ["LRANGE", "pipe:list", 0, -1],
    ]);
    expect(res.status).toBe(200);
    expect(res.body).toEqual([
      { result: "OK" },
      { result: 2 },
      { error: expect.stringMatching(/^WRONGTYPE/) },
      { result: 2 },
      { result: ["x", "y"] },
    ]);
  });

  it("runs multi-exec as a transaction", async () => {
    const res = await post("/multi-exec", [
      ["SET", "tx:a", "1"],
      ["INCR", "tx:a"],
      ["LPUSH", "tx:a", "x"],
    ]);
    expect(res).toEqual({
      status: 200,
      body: [{ result: "OK" }, { result: 2 }, { error: expect.stringMatching(/^WRONGTYPE/) }],
    });

    // A command refused while queuing discards the whole transaction.
    const refused = await post("/multi-exec", [["SET", "tx:b", "1"], ["NOSUCHCOMMAND"]]);
    expect(refused).toEqual({ status: 400, body: { error: expect.stringMatching(/^ERR unknown command/) } });
    expect((await post("/", ["EXISTS", "tx:b"])).body).toEqual({ result: 0 });
  });

  it("base64-encodes every string in results when asked to, but not numbers or nulls", async () => {
    const base64 = { "upstash-encoding": "base64" };
    expect((await post("/", ["SET", "enc:s", "héllo ✓"], base64)).body).toEqual({ result: b64("OK") });
    expect((await post("/", ["GET", "enc:s"], base64)).body).toEqual({ result: b64("héllo ✓") });
    expect(
      (
        await post(
          "/pipeline",
          [
            ["RPUSH", "enc:l", "a", "b"],
            ["LRANGE", "enc:l", 0, -1],
            ["GET", "enc:none"],
          ],
          base64,
        )
      ).body,
    ).toEqual([{ result: 2 }, { result: [b64("a"), b64("b")] }, { result: null }]);
  });
});

describe("real Upstash clients against real Redis", () => {
  const client = () => new Redis({ url: rest.url, token: TOKEN, enableTelemetry: false });

  it("@upstash/redis commands, pipelines and transactions work", async () => {
    const r = client();
    await r.set("client:json", { a: 1, text: "héllo" });
    expect(await r.get("client:json")).toEqual({ a: 1, text: "héllo" });
    expect(await r.incrby("client:n", 3)).toBe(3);
    expect(await r.pipeline().set("client:p", "v").get("client:p").incr("client:n").exec()).toEqual(["OK", "v", 4]);
    expect(await r.multi().incr("client:n").get("client:n").exec()).toEqual([5, 5]);
    await expect(r.incr("client:p")).rejects.toThrow(/not an integer/);
  });

  it("scripts with an Upstash shebang run, and EVALSHA finds them under the client's hash", async () => {
    const r = client();
    const source = "#!lua flags=allow-key-locking\nreturn {KEYS[1], ARGV[1]}";
    const sha = createHash("sha1").update(source).digest("hex");
    expect(await r.eval(source, ["k"], ["v"])).toEqual(["k", "v"]);
    expect(await r.evalsha(sha, ["k2"], ["v2"])).toEqual(["k2", "v2"]);
    expect(await r.scriptExists(sha)).toEqual([1]);

    const loaded = "#!lua flags=allow-key-locking\nreturn 42";
    expect(await r.scriptLoad(loaded)).toBe(createHash("sha1").update(loaded).digest("hex"));
    expect(await r.createScript<number>(loaded).exec([], [])).toBe(42);
  });

  it("@upstash/ratelimit slidingWindow(5, 10 s) lets exactly 5 of 8 calls through", async () => {
    // Calls straddling a window boundary would count the previous window only partially.
    const untilNextWindow = 10_000 - (Date.now() % 10_000);
    if (untilNextWindow < 2_000) await sleep(untilNextWindow + 50);

    const limiter = new Ratelimit({
      redis: client(),
      limiter: Ratelimit.slidingWindow(5, "10 s"),
      prefix: `zgate-test-${Date.now()}`,
      ephemeralCache: false, // every call must reach Redis
    });
    const results = [];
    for (let i = 0; i < 8; i++) results.push(await limiter.limit("user-1"));
    expect(results.map((r) => r.success)).toEqual([true, true, true, true, true, false, false, false]);
    expect(results.map((r) => r.remaining)).toEqual([4, 3, 2, 1, 0, 0, 0, 0]);
    expect(results.every((r) => r.reason === undefined)).toBe(true); // not a timeout's fail-open
  });
});
