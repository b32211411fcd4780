import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const root = new URL("../..", import.meta.url).pathname;

// Written in parts so that this file does not mention them itself.
const OUTSIDE = [["..", "shared", ""].join("/"), ["shared", "upstream-apis"].join("/")];

/**
 * A clone has nothing beside it: the design and its reasons are in docs/design.md, the
 * upstream promises zgate keeps in docs/contracts.md, and anything a test needs from a
 * reference is a fixture in test/fixtures/.
 */
describe("the repository is self-contained", () => {
  it("no tracked file points outside it, to the folder the references and the starting design came from", () => {
    const tracked = execFileSync("git", ["ls-files", "-z"], { cwd: root, encoding: "utf8" }).split("\0").filter(Boolean);
    expect(tracked.length).toBeGreaterThan(0);
    const offending = tracked.flatMap((path) => {
      const file = join(root, path);
      if (!existsSync(file)) return [];
      const text = readFileSync(file).toString("latin1");
      return OUTSIDE.filter((needle) => text.includes(needle)).map((needle) => `${path}: ${needle}`);
    });
    expect(offending).toEqual([]);
  });
});
