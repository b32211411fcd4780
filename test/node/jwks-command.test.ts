import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
// @ts-expect-error plain ESM script without types
import { main } from "../../scripts/jwks.mjs";
import { publishedKeys } from "../../src/forward/assertion-keys";

const work = mkdtempSync(join(tmpdir(), "zgate-jwks-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

type Outcome = { ok: boolean; text: string };
const jwks = (...argv: string[]) => main(argv) as Promise<Outcome>;
const keysIn = (file: string) => JSON.parse(JSON.parse(readFileSync(file, "utf8")).ORIGIN_ASSERTION_KEYS) as Record<string, string>;

describe("npm run jwks", () => {
  it("exports the public keys of a secrets file, adds a key for a rotation and removes the old one, printing no private key", async () => {
    const file = join(work, "production.secrets.json");
    writeFileSync(file, JSON.stringify({ ADMIN_TOKEN: "a".repeat(64), ORIGIN_ASSERTION_KEYS: JSON.stringify({ a1: "A".repeat(43) }) }), {
      mode: 0o600,
    });

    const added = await jwks("--add-key", file);
    expect(added).toEqual({ ok: true, text: expect.stringContaining("added key a2 to ORIGIN_ASSERTION_KEYS") });
    expect(added.text).toContain("wait at least 360 s, then sign with it");
    const keys = keysIn(file);
    expect(Object.keys(keys)).toEqual(["a1", "a2"]);
    expect(keys.a2).toMatch(/^[\w-]{43}$/);
    expect(JSON.parse(readFileSync(file, "utf8")).ADMIN_TOKEN).toBe("a".repeat(64));
    expect(statSync(file).mode & 0o777).toBe(0o600);

    // What /.well-known/jwks.json serves for these keys, and nothing secret.
    const exported = await jwks("--public", file);
    expect(exported.ok).toBe(true);
    expect(JSON.parse(exported.text)).toEqual(await publishedKeys(keys));
    expect(JSON.parse(exported.text).keys.map((k: { kid: string }) => k.kid)).toEqual(["a1", "a2"]);
    for (const seed of Object.values(keys)) expect(exported.text).not.toContain(seed);

    expect(await jwks("--remove-key", "a1", file)).toEqual({ ok: true, text: `removed key a1 from ORIGIN_ASSERTION_KEYS in ${file}` });
    expect(Object.keys(keysIn(file))).toEqual(["a2"]);
    // A removed kid is never handed out again; the last key is never removed.
    expect((await jwks("--add-key", file)).text).toContain("added key a3");
    await jwks("--remove-key", "a2", file);
    expect(await jwks("--remove-key", "a3", file)).toEqual({ ok: false, text: `a3 is the only key in ${file}: add its successor first` });
  });

  it("refuses a file without valid keys, never printing what it holds", async () => {
    const file = join(work, "bad.secrets.json");
    writeFileSync(file, JSON.stringify({ ORIGIN_ASSERTION_KEYS: JSON.stringify({ a1: "secret-but-not-a-key" }) }));
    const refused = await jwks("--public", file);
    expect(refused.ok).toBe(false);
    expect(refused.text).toContain("each key must be an Ed25519 private key");
    expect(refused.text).not.toContain("secret-but-not-a-key");
    expect((await jwks("--public", join(work, "none.json"))).text).toContain("no such file");
  });
});
