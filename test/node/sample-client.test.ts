import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const root = new URL("../..", import.meta.url).pathname;

/** Lines without their indentation: the reference's text lost the client's. */
const lines = (text: string) =>
  text
    .trim()
    .split("\n")
    .map((l) => l.trim());

/**
 * README runs examples/zsky_sample_client.py against `npm start` as "ZSky's own sample
 * client" (test/node/quick-start.test.ts): that is only true while it is the reference's
 * client, kept in test/fixtures/zsky-sample-client.txt since the reference is not in the
 * repository (docs/contracts.md, ZSky).
 */
describe("examples/zsky_sample_client.py", () => {
  it("is ZSky's reference client line for line, with only API read from ZSKY_API", () => {
    const reference = readFileSync(join(root, "test", "fixtures", "zsky-sample-client.txt"), "utf8");
    const client = reference.slice(reference.indexOf("#!/usr/bin/env python3"));
    const example = readFileSync(join(root, "examples", "zsky_sample_client.py"), "utf8");
    expect(lines(example)).toEqual(
      lines(client).map((l) => (l === 'API = "https://zsky.ai"' ? 'API = os.environ.get("ZSKY_API", "https://zsky.ai")' : l)),
    );
  });
});
