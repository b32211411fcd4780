// The types of bench/free-port.mjs as its importers see them (the TypeScript node tests,
// bench/churn.mjs); the module itself is checked against them (tsconfig.scripts.json).
/** A loopback port nothing is listening on right now, outside the kernel's ephemeral range. */
export declare function freePort(): Promise<number>;
