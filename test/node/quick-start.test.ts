import { execFile } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CHROMIUM, CHROMIUM_ARGS, noBrowser } from "./chromium";
import { npmStart, type NpmStart } from "./npm-start";

const run = promisify(execFile);
const root = new URL("../..", import.meta.url).pathname;
if (noBrowser) console.warn("The /docs browser test is skipped: install the Debian package chromium to run it.");

/**
 * README's quick start, for real: `npm start` comes up and every curl command it prints
 * in its "Try it" block works as the comments beside it say. Its ZSky jobs take a
 * minute, as the reference's videos do, so the sample client polls through a whole one.
 */
const JOB_MS = 60_000;
describe("npm start", () => {
  let zgate: NpmStart;
  let output = "";

  beforeAll(async () => {
    zgate = await npmStart({ ZGATE_SIM_ZSKY_COMPLETE_AFTER_MS: String(JOB_MS) });
    output = zgate.output();
  });

  afterAll(() => zgate?.stop());

  it("prints where it listens and an admin token", () => {
    expect(output).toMatch(/zgate listening on http:\/\/127\.0\.0\.1:\d+/);
    expect(output).toMatch(/admin token: dev_admin_[0-9a-f]{32}/);
  });

  it("ZSky's own sample Python client, pointed at the gateway, polls a minute-long job every 2 s to the end and downloads it", async () => {
    const { base, adminToken } = zgate;
    const created = await fetch(`${base}/admin/v1/keys`, {
      method: "POST",
      headers: { Authorization: `Bearer ${adminToken}`, "Content-Type": "application/json" },
      body: JSON.stringify({ product: "zsky", account: "acct_python_sample", label: "sample client" }),
    });
    expect(created.status).toBe(201);
    const { key } = (await created.json()) as { key: string };

    // examples/zsky_sample_client.py is the reference's client line for line: the
    // reference text lost its indentation, and API may come from ZSKY_API. Check that
    // where the reference sits beside the repository (it is not part of it).
    const referencePath = join(root, "..", "shared", "upstream-apis", "zsky-api.txt");
    if (existsSync(referencePath)) {
      const reference = readFileSync(referencePath, "utf8");
      const start = reference.indexOf("#!/usr/bin/env python3");
      const end = reference.indexOf("\n", reference.indexOf('print(f"Failed:', start));
      const lines = (text: string) =>
        text
          .trim()
          .split("\n")
          .map((l) => l.trim());
      const example = readFileSync(join(root, "examples", "zsky_sample_client.py"), "utf8");
      expect(lines(example)).toEqual(
        lines(reference.slice(start, end)).map((l) =>
          l === 'API = "https://zsky.ai"' ? 'API = os.environ.get("ZSKY_API", "https://zsky.ai")' : l,
        ),
      );
    } else {
      console.warn(`The sample client is not compared with the ZSky reference: ${referencePath} is not there.`);
    }
    const dir = mkdtempSync(join(tmpdir(), "zsky-sample-"));
    try {
      const started = Date.now();
      // About 30 polls in the minute, more than ZSky's burst of 20: polls have their own window.
      const { stdout } = await run("python3", [join(root, "examples", "zsky_sample_client.py")], {
        cwd: dir,
        env: { ...process.env, ZSKY_API: `${base}/zsky`, ZSKY_API_KEY: key },
        timeout: JOB_MS + 30_000,
      });
      expect(Date.now() - started).toBeGreaterThanOrEqual(JOB_MS);
      expect(stdout).toMatch(new RegExp(`^Result: ${base}/zsky/v1/results/\\w+\\?expires=\\d+&kid=\\w+&sig=[0-9a-f]{64}`));
      const image = readFileSync(join(dir, "out.webp"));
      expect([...image.subarray(0, 8)]).toEqual([137, 80, 78, 71, 13, 10, 26, 10]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.skipIf(noBrowser)(
    "/docs renders the three products' operations in a real headless Chromium (screenshot in test-results/)",
    async () => {
      const { base } = zgate;
      const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
      try {
        const page = await browser.newPage({ viewport: { width: 1280, height: 2000 } });
        await page.goto(`${base}/docs`);
        await page.waitForSelector(".opblock", { timeout: 30_000 });
        const paths = await page.$$eval(".opblock-summary-path", (nodes) =>
          nodes.map((n) => n.getAttribute("data-path") ?? n.textContent ?? ""),
        );
        for (const expected of ["/zakgt/api/v1/users/me", "/zsky/v1/images/generate", "/zappway/api/v1/agents/{path}", "/admin/v1/keys"]) {
          expect(paths).toContain(expected);
        }
        const tags = await page.$$eval(".opblock-tag", (nodes) => nodes.map((n) => n.getAttribute("data-tag")));
        expect(tags).toEqual(expect.arrayContaining(["zakgt", "zsky", "zappway", "admin"]));
        mkdirSync(join(root, "test-results"), { recursive: true });
        const shot = join(root, "test-results", "docs.png");
        await page.screenshot({ path: shot });
        expect(statSync(shot).size).toBeGreaterThan(10_000);
      } finally {
        await browser.close();
      }
    },
  );

  it("the printed curl commands work as described", async () => {
    const block = output.slice(output.indexOf("Try it:"), output.indexOf("Stop with Ctrl-C."));
    const commands = block
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith("#") && l !== "Try it:");
    expect(commands.length).toBeGreaterThanOrEqual(4);
    // One shell, so the TOKEN from the first command reaches the others; a marker splits the outputs.
    const script = commands.map((c) => `${c}\necho; echo ===`).join("\n");
    const { stdout } = await run("bash", ["-c", script], { timeout: 30_000 });
    const [loginOut, me, noToken, zsky] = stdout.split("===\n").map((s) => s.trim());
    expect(loginOut).toBe("");
    expect(JSON.parse(me!).data.email).toBe("demo@zakgt.test");
    expect(noToken).toMatch(/^HTTP\/1\.1 401/);
    expect(noToken).toContain('{"detail":"Not authenticated"}');
    expect(zsky).toMatch(/^HTTP\/1\.1 401/);
    expect(zsky).toContain('{"error":"Missing API key"}');
  });
});
