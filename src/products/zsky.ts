import type { Product, RouteDef } from "./types";

/** ZSky (`../shared/upstream-apis/zsky-api.txt`): `X-API-Key` keys, `{"error"}` errors. */
const routes: RouteDef[] = [
  { name: "images.generate", method: "POST", path: "/v1/images/generate", auth: "required", json: true },
  { name: "videos.generate", method: "POST", path: "/v1/videos/generate", auth: "required", json: true },
  { name: "jobs.get", method: "GET", path: "/v1/jobs/{id}", auth: "required" },
  { name: "jobs.purge", method: "DELETE", path: "/v1/jobs/{id}", auth: "required" },
  { name: "usage.get", method: "GET", path: "/v1/usage", auth: "required" },
  { name: "keys.rotate", method: "POST", path: "/v1/keys/rotate", auth: "required", gateway: true },
];

export const zsky: Product = {
  id: "zsky",
  pathPrefix: "/zsky",
  hostsSetting: "ZSKY_HOSTS",
  originSetting: "ORIGIN_ZSKY",
  credential: "x-api-key",
  acceptsJwt: false,
  unauthorized: { missing: "Missing API key", invalid: "Invalid API key" },
  envelope: (_code, message) => ({ error: message }),
  routes,
};
