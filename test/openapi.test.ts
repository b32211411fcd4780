import { describe, expect, it } from "vitest";
import documentText from "../openapi/zgate.json?raw";
import { expectDocumented } from "./contract";
import { call, createKey, json } from "./helpers";

// Read as text, as test/contract.ts reads it: as a JSON module the test's runtime is sent a
// 4.5 MB module (each top-level field an export, and a source map), and the type check
// types all 37,000 lines of it.
const document = JSON.parse(documentText);

describe("the OpenAPI document, served", () => {
  it("/openapi.json is the committed openapi/zgate.json, its servers the origin it was asked at", async () => {
    const response = await call("/openapi.json");
    expect(response.status).toBe(200);
    const served = await json(response);
    expect(served).toEqual({ ...document, servers: [{ url: "http://localhost", description: "this deployment" }] });
    expect(document.servers).toEqual([{ url: "http://127.0.0.1:8787", description: "npm start" }]);
  });

  it("names whatever scheme, host and port it is served on, so Try it out calls that deployment", async () => {
    for (const base of ["http://127.0.0.1:9123", "http://gateway.example.test:8443"]) {
      const served = await json(await call("/openapi.json", { base }));
      expect(served.servers).toEqual([{ url: base, description: "this deployment" }]);
    }
    const https = await call("/openapi.json", {
      base: "https://gateway.example.test",
      settings: { ENVIRONMENT: "production", GATEWAY_HOSTS: "gateway.example.test" },
    });
    expect((await json(https)).servers).toEqual([{ url: "https://gateway.example.test", description: "this deployment" }]);
  });

  it("/docs is Swagger UI over /openapi.json with its assets from this deployment, not a CDN", async () => {
    const response = await call("/docs");
    expect(response.status).toBe(200);
    const html = await response.text();
    expect(html).toContain('src="/docs/init.js"');
    expect(await (await call("/docs/init.js")).text()).toContain('url: "/openapi.json"');
    expect(html).toContain('src="/docs/assets/swagger-ui-dist/swagger-ui-bundle.js"');
    expect(html).toContain('href="/docs/assets/swagger-ui-dist/swagger-ui.css"');
    expect(html).not.toMatch(/https?:\/\//);
  });

  it("documents every product's operations, security schemes and error envelopes", () => {
    expect(document.openapi).toBe("3.1.0");
    expect(Object.keys(document.components.securitySchemes).sort()).toEqual(
      ["AdminToken", "CloudflareAccess", "ZakgtAccessKey", "ZakgtAccessToken", "ZappwayApiKey", "ZskyApiKey"].sort(),
    );
    const me = document.paths["/zakgt/api/v1/users/me"].get;
    expect(me.security).toEqual([{ ZakgtAccessToken: [] }, { ZakgtAccessKey: [] }]);
    for (const status of ["401", "403", "404", "422", "429"])
      expect(me.responses[status].content["application/json"].schema.$ref).toBe("#/components/schemas/ZakgtError");
    expect(Object.keys(me.responses["429"].headers).sort()).toEqual(["RateLimit", "RateLimit-Policy", "Retry-After", "X-Request-Id"]);
    expect(document.paths["/zsky/v1/images/generate"].post.security).toEqual([{ ZskyApiKey: [] }]);
    expect(document.paths["/zsky/v1/images/generate"].post.requestBody.content["application/json"].schema.$ref).toBe(
      "#/components/schemas/ZskyImageRequest",
    );
    expect(document.paths["/zappway/api/v1/agents/{path}"].get.responses["401"].content["application/json"].schema.$ref).toBe(
      "#/components/schemas/ZappwayError",
    );
    expect(document.paths["/zakgt/api/v1/auth/login"].post.security).toEqual([]);
    // ZakGT's and ZSky's references list every endpoint, and so does the document: list routes included.
    for (const path of [
      "/zakgt/api/v1/tools/",
      "/zakgt/api/v1/mart/products",
      "/zakgt/api/v1/live/sessions",
      "/zakgt/api/v1/developer/api-keys",
    ])
      expect(document.paths[path].get.security).toEqual([{ ZakgtAccessToken: [] }, { ZakgtAccessKey: [] }]);
    expect(document.paths["/admin/v1/keys"].post.security).toEqual([{ AdminToken: [] }, { CloudflareAccess: [] }]);
  });
});

describe("ZappWay's modules in the document", () => {
  it("every module's own path (GET /api/v1/agents lists agents) and the reference's named endpoints, keyed, in ZappWay's envelope", () => {
    for (const base of ["/zappway/api/v1", "/zappway/api"]) {
      for (const module of ["agents", "datastores", "datasources", "conversations"]) {
        const collection = document.paths[`${base}/${module}`];
        expect(Object.keys(collection).sort()).toEqual(["delete", "get", "patch", "post", "put"]);
        expect(collection.get.parameters ?? []).toEqual([]);
        expect(collection.get.security).toEqual([{ ZappwayApiKey: [] }]);
        expect(collection.get.responses["429"].content["application/json"].schema.$ref).toBe("#/components/schemas/ZappwayError");
        expect(document.paths[`${base}/${module}/{path}`].get["x-zgate-prefix"]).toBe(true);
      }
      const query = document.paths[`${base}/agents/{agentId}/query`].post;
      expect(query.parameters).toEqual([{ schema: { type: "string" }, required: true, name: "agentId", in: "path" }]);
      expect(query.requestBody.content["application/json"].schema.$ref).toBe("#/components/schemas/ZappwayAgentQuery");
      expect(document.paths[`${base}/agents/{agentId}/conversations`].get.security).toEqual([{ ZappwayApiKey: [] }]);
      expect(document.paths[`${base}/datastores/{datastoreId}/upsert`].post.requestBody.content["application/json"].schema.$ref).toBe(
        "#/components/schemas/ZappwayDatastoreUpsert",
      );
    }
  });

  it("the documented calls answer as documented through the gateway (held to the document by call())", async () => {
    const { key } = await createKey("zappway");
    const headers = { Authorization: `Bearer ${key}`, "Content-Type": "application/json" };
    const list = await call("/zappway/api/v1/agents", { headers });
    expect(list.status).toBe(200);
    expect((await json(list)).data.map((a: { id: string }) => a.id)).toContain("agt_support");
    const answer = await call("/zappway/api/v1/agents/agt_support/query", {
      method: "POST",
      headers,
      body: JSON.stringify(document.components.schemas.ZappwayAgentQuery.example),
    });
    expect(answer.status).toBe(200);
    expect((await json(answer)).data.answer).toContain("What is your return policy?");
    const unversioned = await call("/zappway/api/agents", { headers: { Authorization: "Bearer zw_live_unknown" } });
    expect(unversioned.status).toBe(401);
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
