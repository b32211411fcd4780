import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { requestCases, zgateSettings } from "./cases.mjs";
import { measure } from "./load.mjs";
import { startOrigin } from "./origin.mjs";
import { applyMigrations, buildAll, readCompatibility, startBare, startZgate, storageRoot } from "./workers.mjs";
const only = (process.env.Q_CASES ?? "zappway_key").split(",");
const work = mkdtempSync(join(tmpdir(), "q-"));
const storage = storageRoot("tmpfs");
const origin = await startOrigin();
const built = await buildAll(work);
const compat = readCompatibility();
const bare = await startBare({ scriptPath: built.bare, originUrl: origin.url, compat, storage });
const settings = { ...zgateSettings(origin.url, 1), ...JSON.parse(process.env.Q_SETTINGS ?? "{}") };
const zgate = await startZgate({ scriptPath: built.zgate, settings, compat, storage });
await applyMigrations(zgate.mf);
const cases = (await requestCases(zgate.url, settings)).filter((c) => only.includes(c.id));
const load = (base, c) => ({ url: base + c.path, method: c.method, headers: c.headers, body: c.body, connections: 50, duration: 2, expect: c.expect ?? 200 });
for (const c of cases) {
  await measure({ ...load(zgate.url, c), duration: 1 });
  await measure({ ...load(bare.url, c), duration: 1, expect: 200 });
  const ratios = [];
  for (let i = 0; i < 3; i++) {
    const a = await measure(load(zgate.url, c));
    const b = await measure({ ...load(bare.url, c), expect: 200 });
    ratios.push((a.rps / b.rps).toFixed(2) + ` (${a.rps.toFixed(0)}/${b.rps.toFixed(0)} unexp ${a.unexpected})`);
  }
  console.log(c.id, ratios.join("  "));
}
await zgate.stop(); await bare.stop(); await origin.stop?.(); process.exit(0);
