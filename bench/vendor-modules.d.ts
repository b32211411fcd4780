// The parts of two packages the bench uses that ship no types of their own: autocannon
// (bench/load.mjs) and ws (bench/profile.mjs, a dependency of wrangler's).

declare module "autocannon" {
  export interface Client {
    setHeaders(headers: Record<string, string>): void;
  }
  export interface Options {
    url: string;
    method?: string;
    headers?: Record<string, string>;
    body?: string;
    connections: number;
    /** Seconds. */
    duration?: number;
    /** A fixed request count instead of a duration. */
    amount?: number;
    /** Seconds a request may take. */
    timeout?: number;
    setupClient?: (client: Client) => void;
  }
  export interface Result {
    errors: number;
    timeouts: number;
  }
  export interface Instance {
    /** Each answer: its client, status, body bytes and time taken (ms, from hrtime). */
    on(event: "response", listener: (client: Client, status: number, bytes: number, ms: number) => void): Instance;
    stop(): void;
  }
  function autocannon(options: Options, done: (err: Error | null, result: Result) => void): Instance;
  export default autocannon;
}

declare module "ws" {
  export default class WebSocket {
    constructor(url: string);
    on(event: "message", listener: (data: { toString(): string }) => void): this;
    once(event: "open", listener: () => void): this;
    once(event: "error", listener: (err: Error) => void): this;
    send(data: string): void;
    close(): void;
  }
}
