import { describe, expect, it } from "vitest";
import { bearer, call, json, login } from "./helpers";

describe("smoke", () => {
  it("logs in and reads users/me", async () => {
    const token = await login();
    const me = await call("/zakgt/api/v1/users/me", { headers: bearer(token) });
    expect(me.status).toBe(200);
    expect((await json(me)).data.email).toBe("demo@zakgt.test");
  });
});
