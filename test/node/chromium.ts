import { existsSync } from "node:fs";

/**
 * Debian's chromium for the browser tests: `.ci/run` installs it; on a developer machine
 * without it those tests are skipped with a warning, in CI a missing browser fails.
 */
export const CHROMIUM = "/usr/bin/chromium";
export const noBrowser = !existsSync(CHROMIUM) && !process.env.CI;

/** Root in a sandbox-less container, no GPU, and no background calls home (the network is closed). */
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
