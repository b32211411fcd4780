// The types of bench/churn.mjs as its importers see them (bench/memory.mjs); the module
// itself is checked against them (tsconfig.scripts.json).

/** docs/limits.md: the most the runtime running zgate may keep over the warm churn's last 30 s, read after full collections (MB). */
export declare const GROWTH_LIMIT_MB: number;
/** docs/limits.md: the most resident memory the runtime running zgate may reach under churn and many keys (MB). */
export declare const RUNTIME_CEILING_MB: number;

/** A request to send: where, and its headers. */
export interface ChurnRequest {
  path: string;
  headers: Record<string, string>;
}

/** A runtime under churn: `npm start` (zgate), or the bare control, on free ports with a state directory of its own. */
export interface Gateway {
  /** The Worker's name (its isolate's, on the runtime's inspector): `zgate` or `bare`. */
  name: string;
  base: string;
  port: number;
  /** zgate's admin token (the control has none: ""). */
  adminToken: string;
  /** The pid above its runtime (and the id of its process group). */
  pid: number;
  output(): string;
  /** Stops its whole process group, then removes its state. */
  stop(): Promise<void>;
}
export declare function startGateway(): Promise<Gateway>;
/** The control: wrangler dev running a Worker that only passes requests on to an origin. */
export declare function startBareGateway(): Promise<Gateway>;

/** The product's authenticated route with `key`, presented the way the product documents. */
export declare function keyedRequest(key: string): ChurnRequest;
/** Request `i` of a churn: a new client address and a made-up key with a valid checksum, the three products in turn. */
export declare function churnRequests(first?: number): Promise<(i: number) => ChurnRequest>;
/** The n-th IPv4 address of 10.0.0.0/8. */
export declare function addressOf(n: number): string;

/** Resident memory (MB): the runtime running zgate, and wrangler's own entry process. */
export interface RuntimeMemory {
  worker: number;
  proxy: number;
}
export declare function runtimeMemory(root: number, port: number): Promise<RuntimeMemory>;
/** The port of the V8 inspector of the runtime running the Worker (its isolate: `gateway.name`). */
export declare function runtimeInspector(gateway: Gateway): Promise<number>;

/** One reading, `t` seconds into a run: requests sent and answered so far, memory (MB). */
export interface Sample extends RuntimeMemory {
  t: number;
  sent: number;
  answered: number;
}
export interface DriveResult {
  seconds: number;
  rate: number;
  sent: number;
  statuses: Record<string, number>;
  /** Requests sent but not answered when sending stopped. */
  unansweredAtEnd: number;
  samples: Sample[];
  /** Why the run ended early: the runtime could no longer be read (it died). */
  died?: string;
}
export declare function drive(run: {
  base: string;
  request: (i: number) => ChurnRequest;
  seconds: number;
  rate: number;
  memory: () => Promise<RuntimeMemory>;
  every?: number;
}): Promise<DriveResult>;

/** Growth over the last `span` seconds: the fitted slope times `span`, and last minus first reading. */
export declare function growthOverLast(
  samples: Sample[],
  span: number,
  field?: keyof RuntimeMemory,
): { fitted: number; difference: number; readings: number };
