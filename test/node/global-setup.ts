import { randomBytes } from "node:crypto";
import type { TestProject } from "vitest/node";
import { startSimulators } from "../../origins/serve";


/** Starts the three origin simulators on free loopback ports for the whole run. */
export default async function setup(project: TestProject) {
  const signingSecret = randomBytes(32).toString("hex");
  const sims = await startSimulators({
    signingSecret,
    issuer: "https://api.zakgt.net",
    audience: "zakgt-api",
    zskyCompleteAfterMs: 100,
  });
  project.provide("simulators", { origins: sims.origins, jwksUrl: sims.jwksUrl, signingSecret });
  return () => sims.close();
}
