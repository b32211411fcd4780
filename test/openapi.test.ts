import { describe, expect, it } from "vitest";
import document from "../openapi/zgate.json";
import { expectDocumented } from "./contract";
import { call, json } from "./helpers";

describe("the OpenAPI document, served", () => {
  it("/openapi.json is the committed openapi/zgate.json", async () => {
    const response = await call("/openapi.json");
    expect(response.status).toBe(200);
    expect(await json(response)).toEqual(document);
  });

  it("/docs is Swagger UI over /openapi.json with its assets from this deployment, not a CDN", async () => {
    const response = await call("/docs");
    expect(response.status).toBe(200);
    const html = await response.text();
    expect(html).toContain("url: '/openapi.json'");
    expect(html).toContain('src="/docs/assets/swagger-ui-dist/swagger-ui-bundle.js"');
    expect(html).toContain('href="/docs/assets/swagger-ui-dist/swagger-ui.css"');
    expect(html).not.toMatch(/https?:\/\//);
  });

  it("documents every product's operations, security schemes and error envelopes", () => {
    const doc = document as any;
    expect(doc.openapi).toBe("3.1.0");
    expect(Object.keys(doc.components.securitySchemes).sort()).toEqual(
      ["AdminToken", "CloudflareAccess", "ZakgtAccessKey", "ZakgtAccessToken", "ZappwayApiKey", "ZskyApiKey"].sort(),
    );
    const me = doc.paths["/zakgt/api/v1/users/me"].get;
    expect(me.security).toEqual([{ ZakgtAccessToken: [] }, { ZakgtAccessKey: [] }]);
    for (const status of ["401", "403", "404", "422", "429"])
      expect(me.responses[status].content["application/json"].schema.$ref).toBe("#/components/schemas/ZakgtError");
    expect(Object.keys(me.responses["429"].headers).sort()).toEqual(["RateLimit", "RateLimit-Policy", "Retry-After", "X-Request-Id"]);
    expect(doc.paths["/zsky/v1/images/generate"].post.security).toEqual([{ ZskyApiKey: [] }]);
    expect(doc.paths["/zsky/v1/images/generate"].post.requestBody.content["application/json"].schema.$ref).toBe(
      "#/components/schemas/ZskyImageRequest",
    );
    expect(doc.paths["/zappway/api/v1/agents/{path}"].get.responses["401"].content["application/json"].schema.$ref).toBe(
      "#/components/schemas/ZappwayError",
    );
    expect(doc.paths["/zakgt/api/v1/auth/login"].post.security).toEqual([]);
    expect(doc.paths["/admin/v1/keys"].post.security).toEqual([{ AdminToken: [] }, { CloudflareAccess: [] }]);
  });
});

describe("the contract check itself", () => {
  const req = (path: string, init?: RequestInit) => new Request(`http://localhost${path}`, init);
  const res = (status: number, body: unknown, headers: Record<string, string> = {}) =>
    new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json", ...headers } });

  it("fails an undocumented status", async () => {
    await expect(expectDocumented(req("/zakgt/api/v1/users/me"), res(418, { detail: "teapot" }))).rejects.toThrow(/status not documented/);
  });

  it("fails a body that does not match the schema", async () => {
    await expect(expectDocumented(req("/zsky/v1/usage"), res(401, { detail: "wrong envelope" }))).rejects.toThrow(/body does not match/);
    await expect(expectDocumented(req("/zsky/v1/usage"), res(200, { videos_used: "many" }))).rejects.toThrow(/body does not match/);
  });

  it("fails an undocumented gateway header", async () => {
    await expect(expectDocumented(req("/openapi.json"), res(200, { openapi: "3.1.0" }, { RateLimit: '"x";r=1;t=1' }))).rejects.toThrow(
      /header ratelimit not documented/,
    );
  });

  it("passes a documented response", async () => {
    await expectDocumented(req("/zsky/v1/usage"), res(401, { error: "Missing API key" }, { "X-Request-Id": "r" }));
  });
});
