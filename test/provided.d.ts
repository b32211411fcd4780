/** Values the Node global setup hands to the tests inside workerd. */
export {};

declare module "vitest" {
  export interface ProvidedContext {
    simulators: {
      origins: { zakgt: string; zsky: string; zappway: string };
      jwksUrl: string;
      signingSecret: string;
    };
  }
}
