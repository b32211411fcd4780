import { connect, type Socket } from "node:net";

/**
 * A Redis error reply. Replies are values, not exceptions, so a pipeline or an EXEC
 * result can carry one error among successful replies.
 */
export class RespError extends Error {
  override name = "RespError";
}

/** Simple strings are `string`, bulk strings `Buffer` (they may be binary), nulls `null`. */
export type RespValue = string | Buffer | number | null | RespError | RespValue[];

export function encodeCommand(args: readonly (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const bytes = typeof arg === "string" ? Buffer.from(arg) : arg;
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from("\r\n"));
  }
  return Buffer.concat(parts);
}

/** Parses one RESP2 reply at `start`; `undefined` when `buf` does not hold all of it yet. */
export function parseReply(buf: Buffer, start = 0): { value: RespValue; next: number } | undefined {
  const lineEnd = buf.indexOf("\r\n", start);
  if (lineEnd === -1) return undefined;
  const type = String.fromCharCode(buf[start]!);
  const line = buf.toString("utf8", start + 1, lineEnd);
  const next = lineEnd + 2;
  switch (type) {
    case "+":
      return { value: line, next };
    case "-":
      return { value: new RespError(line), next };
    case ":":
      // Beyond 2^53 this loses precision, as JSON numbers in the REST protocol would anyway.
      return { value: Number(line), next };
    case "$": {
      const length = Number(line);
      if (length === -1) return { value: null, next };
      if (buf.length < next + length + 2) return undefined;
      return { value: buf.subarray(next, next + length), next: next + length + 2 };
    }
    case "*": {
      const count = Number(line);
      if (count === -1) return { value: null, next };
      const items: RespValue[] = [];
      let at = next;
      for (let i = 0; i < count; i++) {
        const item = parseReply(buf, at);
        if (!item) return undefined;
        items.push(item.value);
        at = item.next;
      }
      return { value: items, next: at };
    }
    default:
      throw new Error(`RESP: unexpected reply type ${JSON.stringify(type)}`);
  }
}

interface Pending {
  resolve(value: RespValue): void;
  reject(error: Error): void;
}

/** One connection to a loopback Redis. Commands may be pipelined: replies come back in send order. */
export class RespClient {
  readonly #socket: Socket;
  readonly #pending: Pending[] = [];
  #buffer = Buffer.alloc(0);

  static connect(port: number): Promise<RespClient> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, "127.0.0.1");
      socket.once("error", reject);
      socket.once("connect", () => {
        socket.off("error", reject);
        resolve(new RespClient(socket));
      });
    });
  }

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => this.#onData(chunk));
    socket.on("error", (error) => this.#failAll(error));
    socket.on("close", () => this.#failAll(new Error("Redis connection closed")));
  }

  /** Resolves with the reply, error replies included (as `RespError`); rejects only if the connection fails. */
  send(args: readonly (string | Buffer)[]): Promise<RespValue> {
    return new Promise((resolve, reject) => {
      if (!this.#socket.writable) return reject(new Error("Redis connection closed"));
      this.#pending.push({ resolve, reject });
      this.#socket.write(encodeCommand(args));
    });
  }

  close(): Promise<void> {
    if (this.#socket.closed) return Promise.resolve();
    return new Promise((resolve) => {
      this.#socket.once("close", () => resolve());
      this.#socket.end();
    });
  }

  #onData(chunk: Buffer): void {
    this.#buffer = Buffer.concat([this.#buffer, chunk]);
    try {
      // A partial reply is parsed again from its start once more data arrives; fine for test traffic.
      for (let reply = parseReply(this.#buffer); reply; reply = parseReply(this.#buffer)) {
        this.#buffer = this.#buffer.subarray(reply.next);
        this.#pending.shift()?.resolve(reply.value);
      }
    } catch (error) {
      this.#socket.destroy(error as Error);
    }
  }

  #failAll(error: Error): void {
    for (const pending of this.#pending.splice(0)) pending.reject(error);
  }
}
