import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, normalize } from "node:path";
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

  it("every relative link of README.md and docs/ names a file in the repository (the console screenshots are committed, not left to npm test)", () => {
    const tracked = execFileSync("git", ["ls-files", "-z"], { cwd: root, encoding: "utf8" }).split("\0").filter(Boolean);
    const pages = tracked.filter((path) => path === "README.md" || /^docs\/[^/]+\.md$/.test(path));
    const broken = pages.flatMap((page) =>
      [...readFileSync(join(root, page), "utf8").matchAll(/\]\(([^)\s#]+)(?:#[^)\s]*)?\)/g)]
        .map((m) => m[1]!)
        .filter((link) => !/^[a-z]+:/.test(link))
        .filter((link) => {
          const target = normalize(join(dirname(page), link)).replace(/\/$/, "");
          return !tracked.some((path) => path === target || path.startsWith(`${target}/`));
        })
        .map((link) => `${page}: ${link}`),
    );
    expect(pages.length).toBeGreaterThan(10);
    expect(broken).toEqual([]);
  });
});
