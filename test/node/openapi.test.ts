import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Validator } from "@seriousme/openapi-schema-validator";
import { describe, expect, it } from "vitest";
// @ts-expect-error plain ESM script without types
import { renderDocument } from "../../scripts/openapi.mjs";

const run = promisify(execFile);
const root = new URL("../..", import.meta.url).pathname;
const committed = join(root, "openapi", "zgate.json");
const script = join(root, "scripts", "openapi.mjs");

describe("openapi/zgate.json", () => {
  it("is what `npm run openapi` generates now (run it after changing a route)", async () => {
    expect(readFileSync(committed, "utf8")).toBe(await renderDocument());
  });

  it("is a valid OpenAPI 3.1 document", async () => {
    const validator = new Validator();
    const result = await validator.validate(committed);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe("3.1");
  });
});

describe("npm run openapi -- --server", () => {
  it("writes a deployment's document (servers named, nothing else changed) to --out, and --check reads it back", async () => {
    const dir = mkdtempSync(join(tmpdir(), "zgate-openapi-test-"));
    try {
      const out = join(dir, "openapi.json");
      const servers = ["--server", "https://gateway.example.com", "--server", "http://127.0.0.1:9000"];
      await run("node", [script, ...servers, "--out", out]);
      const written = JSON.parse(readFileSync(out, "utf8"));
      expect(written.servers).toEqual([
        { url: "https://gateway.example.com", description: "deployment" },
        { url: "http://127.0.0.1:9000", description: "deployment" },
      ]);
      expect({ ...written, servers: undefined }).toEqual({ ...JSON.parse(readFileSync(committed, "utf8")), servers: undefined });
      await run("node", [script, "--check", ...servers, "--out", out]);
      // The same file without the servers it was written with is stale.
      await expect(run("node", [script, "--check", "--out", out])).rejects.toMatchObject({
        code: 1,
        stderr: expect.stringContaining("is stale"),
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuses a server that is not an http(s) origin, and unknown options, writing nothing", async () => {
    const before = readFileSync(committed, "utf8");
    for (const [server, message] of [
      ["gateway.example.com", "not a URL"],
      ["https://gateway.example.com/api", "no path"],
      ["ftp://gateway.example.com", "http(s)://host[:port]"],
      ["https://user:pw@gateway.example.com", "credentials"],
    ]) {
      await expect(run("node", [script, "--server", server!])).rejects.toMatchObject({
        code: 2,
        stderr: expect.stringContaining(message!),
      });
    }
    await expect(run("node", [script, "--servers", "https://x.example"])).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringContaining("Unknown option '--servers'"),
    });
    expect(readFileSync(committed, "utf8")).toBe(before);
  });
});
