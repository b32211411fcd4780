import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Validator } from "@seriousme/openapi-schema-validator";
import { describe, expect, it } from "vitest";
// @ts-expect-error plain ESM script without types
import { renderDocument } from "../../scripts/openapi.mjs";

const root = new URL("../..", import.meta.url).pathname;
const committed = join(root, "openapi", "zgate.json");

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
