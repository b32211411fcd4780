import { createHash } from "node:crypto";
import { once } from "node:events";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { RespClient, RespError, type RespValue } from "./resp-client";

/**
 * The Upstash Redis REST protocol (what `@upstash/redis` speaks) in front of a real
 * `redis-server`, so the Worker's Upstash clients can be tested against real Redis:
 *   POST /            ["SET","k","v"]        -> {"result":"OK"} or 400 {"error":"..."}
 *   POST /pipeline    [["SET","k","v"],...]  -> [{"result":...} | {"error":"..."}, ...]
 *   POST /multi-exec  same, inside MULTI/EXEC
 * With `Upstash-Encoding: base64` every string in a result is base64-encoded
 * (numbers and nulls are not), which is what the client asks for by default.
 */
export interface UpstashRestServer {
  url: string;
  close(): Promise<void>;
}

type Reply = { result: unknown } | { error: string };

class BadRequest extends Error {}

export async function startUpstashRestServer(options: { redisPort: number; token: string }): Promise<UpstashRestServer> {
  // One connection for all requests: each request writes its commands in one synchronous
  // burst, so a MULTI ... EXEC block is never interleaved with another request's commands.
  const redis = await RespClient.connect(options.redisPort);
  const scripts = new ShebangStripper();

  const send = (command: string[]): Promise<RespValue> => {
    const { args, reply } = scripts.rewrite(command);
    return redis.send(args).then(reply);
  };

  const handlers: Record<string, (body: unknown, base64: boolean) => Promise<[number, Reply | Reply[]]>> = {
    "/": async (body, base64) => {
      const reply = toReply(await send(parseCommand(body)), base64);
      return ["error" in reply ? 400 : 200, reply];
    },
    "/pipeline": async (body, base64) => {
      const replies = await Promise.all(parseCommands(body).map(send));
      return [200, replies.map((value) => toReply(value, base64))];
    },
    "/multi-exec": async (body, base64) => {
      const commands = parseCommands(body).map((command) => scripts.rewrite(command));
      const replies = await Promise.all([redis.send(["MULTI"]), ...commands.map(({ args }) => redis.send(args)), redis.send(["EXEC"])]);
      const results = replies.at(-1);
      if (!Array.isArray(results)) {
        // EXECABORT: a command was refused while queuing; report that command's error.
        const refused = replies.find((reply) => reply instanceof RespError) ?? results;
        return [400, { error: refused instanceof RespError ? refused.message : "ERR transaction failed" }];
      }
      return [200, results.map((value, i) => toReply(commands[i]!.reply(value), base64))];
    },
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      const [status, message] = error instanceof BadRequest ? [400, error.message] : [500, String(error)];
      respond(res, status, { error: message });
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.headers.authorization !== `Bearer ${options.token}`) return respond(res, 401, { error: "Unauthorized" });
    const handler = req.method === "POST" ? handlers[req.url ?? ""] : undefined;
    if (!handler) return respond(res, 404, { error: "Not Found" });
    const base64 = req.headers["upstash-encoding"]?.toString().toLowerCase() === "base64";
    const [status, reply] = await handler(await readJson(req), base64);
    respond(res, status, reply);
  }

  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };

  return {
    url: `http://127.0.0.1:${port}`,
    async close() {
      const closed = once(server, "close");
      server.close();
      server.closeAllConnections(); // clients keep connections alive; don't wait for them to idle out
      await closed;
      await redis.close();
    },
  };
}

/**
 * @upstash/ratelimit's scripts start with `#!lua flags=allow-key-locking`, an Upstash-only
 * flag that redis-server 7 refuses ("Unexpected flag in script shebang"). The shebang line is
 * blanked (its newline stays, so Lua error line numbers still match) and, because the client
 * computes EVALSHA hashes over the text it holds, its hash is mapped to the one Redis cached.
 */
class ShebangStripper {
  readonly #redisSha = new Map<string, string>();

  rewrite(command: string[]): { args: string[]; reply(value: RespValue): RespValue } {
    const [name = "", first = "", ...rest] = command;
    const keep = (value: RespValue) => value;
    switch (name.toUpperCase()) {
      case "EVAL":
      case "EVAL_RO":
        return { args: [name, this.#strip(first), ...rest], reply: keep };
      case "EVALSHA":
      case "EVALSHA_RO":
        return { args: [name, this.#translate(first), ...rest], reply: keep };
      case "SCRIPT":
        if (first.toUpperCase() === "LOAD" && rest.length === 1) {
          const script = rest[0]!;
          // Answer with the hash of the script as the client sent it.
          return { args: [name, first, this.#strip(script)], reply: (value) => (value instanceof RespError ? value : sha1(script)) };
        }
        if (first.toUpperCase() === "EXISTS") return { args: [name, first, ...rest.map((sha) => this.#translate(sha))], reply: keep };
    }
    return { args: command, reply: keep };
  }

  #strip(script: string): string {
    if (!script.startsWith("#!")) return script;
    const stripped = script.replace(/^#![^\n]*/, "");
    this.#redisSha.set(sha1(script), sha1(stripped));
    return stripped;
  }

  #translate(sha: string): string {
    return this.#redisSha.get(sha.toLowerCase()) ?? sha;
  }
}

function sha1(text: string): string {
  return createHash("sha1").update(text).digest("hex");
}

function parseCommand(value: unknown): string[] {
  if (!Array.isArray(value) || value.length === 0) throw new BadRequest("ERR a command must be a non-empty JSON array");
  return value.map((arg: unknown) => {
    // The client sends numbers (and booleans) as JSON values; RESP only has strings.
    if (typeof arg === "string" || typeof arg === "number" || typeof arg === "boolean") return String(arg);
    throw new BadRequest(`ERR unsupported command argument ${JSON.stringify(arg)}`);
  });
}

function parseCommands(value: unknown): string[][] {
  if (!Array.isArray(value) || value.length === 0) throw new BadRequest("ERR expected a non-empty JSON array of commands");
  return value.map(parseCommand);
}

function toReply(value: RespValue, base64: boolean): Reply {
  return value instanceof RespError ? { error: value.message } : { result: toJson(value, base64) };
}

function toJson(value: RespValue, base64: boolean): unknown {
  if (value === null || typeof value === "number") return value;
  if (Array.isArray(value)) return value.map((item) => toJson(item, base64));
  // An error nested in an array (a script can return one) is shown as its message.
  const text = value instanceof RespError ? value.message : value;
  return base64 ? Buffer.from(text).toString("base64") : text.toString();
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    throw new BadRequest("ERR the request body is not valid JSON");
  }
}

function respond(res: ServerResponse, status: number, body: Reply | Reply[]): void {
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
}
