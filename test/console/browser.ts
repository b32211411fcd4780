import { ADMIN_TOKEN, call, type CallOptions } from "../helpers";

/** A page's text as a person reads it: no tags, entities decoded. */
export const pageText = (html: string) =>
  html
    .replace(/<[^>]+>/g, "")
    .replace(/&#39;/g, "'")
    .replace(/&quot;/g, '"')
    .replace(/&amp;/g, "&");

/**
 * The security console through the Worker's own fetch handler: a small cookie jar
 * stands in for the browser (test/node/security-console.test.ts drives a real one).
 */
export class Browser {
  cookie = "";
  constructor(readonly options: CallOptions = {}) {}

  async get(path: string): Promise<Response> {
    return this.keep(await call(path, { ...this.options, headers: this.headers(), redirect: "manual" }));
  }

  async post(path: string, form: Record<string, string>): Promise<Response> {
    const headers = { ...this.headers(), "Content-Type": "application/x-www-form-urlencoded" };
    return this.keep(await call(path, { ...this.options, method: "POST", headers, body: new URLSearchParams(form), redirect: "manual" }));
  }

  /** The CSRF token of the page's forms. */
  static csrf(html: string): string {
    return /name="csrf" value="([0-9a-f]{64})"/.exec(html)![1]!;
  }

  async signIn(token = ADMIN_TOKEN): Promise<Response> {
    const form = await this.get("/admin/sign-in");
    return this.post("/admin/sign-in", { csrf: Browser.csrf(await form.text()), token });
  }

  private headers(): Record<string, string> {
    return { ...(this.options.headers as Record<string, string>), ...(this.cookie ? { Cookie: this.cookie } : {}) };
  }

  private keep(response: Response): Response {
    const set = response.headers.get("set-cookie");
    if (set) this.cookie = /Max-Age=0/i.test(set) ? "" : set.split(";")[0]!;
    return response;
  }
}
