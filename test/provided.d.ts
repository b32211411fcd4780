/** Values the global setups hand to the tests (inside workerd, and in the node project). */
export {};

declare module "vitest" {
  export interface ProvidedContext {
    simulators: {
      /** The simulators of the products the tests name. */
      origins: { zakgt: string; zsky: string; zappway: string };
      /** Every registered product's simulator, by the setting that names its origin (`ORIGIN_ZAKGT`, ...). */
      originSettings: Record<string, string>;
      /** ZakGT's JWKS (the simulator's session-token keys). */
      jwksUrl: string;
      /** The gateway's ORIGIN_ASSERTION_KEYS (kid `t1`): the simulators trust its public key. */
      assertionKeys: string;
      /** Another key (a seed), which the simulators do not know: what a rotation publishes, then signs with. */
      nextAssertionKey: string;
    };
    /** The Upstash REST server in front of a real redis-server, or null where redis-server is missing (never in CI). */
    upstash: { url: string; token: string } | null;
    /** An HTTP server that accepts requests and never answers. */
    blackhole: string;
    /** An HTTP server that answers 200 with half a JSON body, then stalls. */
    stalledBody: string;
    /** A host besides the ZSky origin for result URLs (test/node/result-host.ts). */
    resultHost: string;
    /** Key documents of secret-scanning programs and a leak-webhook receiver (test/node/scanner-host.ts). */
    scannerHost: string;
    /** The node project's: where its files ask for the run's shared dev gateway (test/node/gateway-setup.ts). */
    devGatewayBroker: string;
  }
}
