import type { Context } from "hono";
import { getCookie, setCookie, deleteCookie } from "hono/cookie";
import type { Settings } from "../config/settings";
import { adminGuardFor, guardUnavailable } from "../admit/guard-client";
import type { Env } from "../env";
import type { AppEnv } from "../http/context";
import { sameSecret } from "../admin/admin-auth";
import { TOKEN_CONSOLE_IDENTITY } from "../limits/guard-protocol";
import { toHex } from "../util/hex";
import { sha256Hex } from "../util/sha256";

/**
 * Who is using the console, and how its admin API calls are made for them.
 *
 * - Signed in with ADMIN_TOKEN: the browser holds a session cookie, never the token: a
 *   random session id, an expiry and whether sign-in succeeded, with an HMAC-SHA256 over
 *   them keyed by a key derived from ADMIN_TOKEN (so rotating the token ends every
 *   session). A signed-in session is also kept in the admin guard (by its id's SHA-256,
 *   guard/console-sessions.ts) and is good only while it is there: signing out, or out
 *   everywhere, ends it for every copy of the cookie. Its admin calls carry the
 *   deployment's ADMIN_TOKEN: actor `admin:token`.
 * - Behind Cloudflare Access: Access puts its JWT on every request; the console passes
 *   it on to the admin API, which verifies it and audits its email (`admin:<email>`).
 *
 * The CSRF token of a form is a hash of the session's secret (the whole signed cookie,
 * or the Access JWT), which a page of another site can neither read nor compute; the
 * console compares it in constant time on every POST.
 */
export type ConsoleSession =
  { kind: "token"; signedIn: boolean; binding: string; id: string } | { kind: "access"; signedIn: true; binding: string; jwt: string };

/** `__Secure-`: browsers accept it only with Secure; the path keeps it off the product paths of a gateway host. */
const SESSION_COOKIE = "__Secure-zgate_console";
export const CONSOLE_PATH = "/admin";
const SESSION_SECONDS = 8 * 3600;
/** A visitor who has not signed in yet holds a short pre-session, so the sign-in form has a CSRF token too. */
const PRE_SESSION_SECONDS = 15 * 60;

const encoder = new TextEncoder();

async function sessionKey(adminToken: string): Promise<CryptoKey> {
  const material = await crypto.subtle.digest("SHA-256", encoder.encode(`zgate console session key\n${adminToken}`));
  return crypto.subtle.importKey("raw", material, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
}

async function mac(adminToken: string, payload: string): Promise<string> {
  return toHex(await crypto.subtle.sign("HMAC", await sessionKey(adminToken), encoder.encode(payload)));
}

/** `v1.<session id>.<expiry, unix s>.<1 signed in | 0 pre-session>.<hmac>` */
async function cookieValue(adminToken: string, signedIn: boolean, now: number): Promise<{ value: string; id: string; exp: number }> {
  const id = toHex(crypto.getRandomValues(new Uint8Array(16)));
  const exp = Math.floor(now / 1000) + (signedIn ? SESSION_SECONDS : PRE_SESSION_SECONDS);
  const payload = `v1.${id}.${exp}.${signedIn ? 1 : 0}`;
  return { value: `${payload}.${await mac(adminToken, payload)}`, id, exp };
}

async function verifyCookie(adminToken: string, value: string, now: number): Promise<{ signedIn: boolean; id: string } | null> {
  const match = /^(v1\.([0-9a-f]{32})\.(\d{1,12})\.([01]))\.([0-9a-f]{64})$/.exec(value);
  if (!match) return null;
  if (!(await sameSecret(match[5]!, await mac(adminToken, match[1]!)))) return null;
  if (Number(match[3]) * 1000 <= now) return null;
  return { signedIn: match[4] === "1", id: match[2]! };
}

/**
 * The admin guard's record of signed-in sessions, by the SHA-256 of the id (storage never
 * holds a cookie's part). Unreachable: 503, never a session taken on trust.
 */
function sessionStore(env: Env) {
  const guard = adminGuardFor(env);
  return {
    open: async (id: string, expiresAt: number) =>
      guard.openConsoleSession(await sha256Hex(id), { identity: TOKEN_CONSOLE_IDENTITY, expiresAt }).catch(guardUnavailable),
    live: async (id: string) => guard.consoleSessionLive(await sha256Hex(id)).catch(guardUnavailable),
    close: async (id: string) => guard.closeConsoleSession(await sha256Hex(id)).catch(guardUnavailable),
  };
}

function accessConfigured(settings: Settings): boolean {
  return Boolean(settings.ACCESS_TEAM_DOMAIN && settings.ACCESS_AUD);
}

/** The request's session, if any (an Access JWT wins over a cookie, as in the admin API). */
export async function readSession<E extends AppEnv>(c: Context<E>): Promise<ConsoleSession | null> {
  const settings = c.get("settings");
  const jwt = c.req.header("cf-access-jwt-assertion");
  if (jwt && accessConfigured(settings)) return { kind: "access", signedIn: true, binding: jwt, jwt };
  const value = getCookie(c, SESSION_COOKIE);
  if (!value || !settings.ADMIN_TOKEN) return null;
  const verified = await verifyCookie(settings.ADMIN_TOKEN, value, Date.now());
  if (!verified) return null;
  // A signed-in session signed out (here or everywhere) is no session, whoever holds its cookie.
  if (verified.signedIn && !(await sessionStore(c.env).live(verified.id))) return null;
  return { kind: "token", signedIn: verified.signedIn, binding: value, id: verified.id };
}

/**
 * Issues a fresh session (a new id on every sign-in: a pre-session id never becomes a
 * signed-in one). Only a signed-in session is recorded: a pre-session is the sign-in
 * form's CSRF binding, which anyone may get.
 */
export async function startSession<E extends AppEnv>(c: Context<E>, signedIn: boolean): Promise<ConsoleSession> {
  const { value, id, exp } = await cookieValue(c.get("settings").ADMIN_TOKEN!, signedIn, Date.now());
  if (signedIn) await sessionStore(c.env).open(id, exp * 1000);
  setCookie(c, SESSION_COOKIE, value, {
    path: CONSOLE_PATH,
    httpOnly: true,
    secure: true,
    sameSite: "Strict",
    maxAge: signedIn ? SESSION_SECONDS : PRE_SESSION_SECONDS,
  });
  return { kind: "token", signedIn, binding: value, id };
}

/** Signs this session out: its record goes (every copy of its cookie is refused from now on), then its cookie. */
export async function endSession<E extends AppEnv>(c: Context<E>, session: ConsoleSession | null): Promise<void> {
  if (session?.kind === "token" && session.signedIn) await sessionStore(c.env).close(session.id);
  deleteCookie(c, SESSION_COOKIE, { path: CONSOLE_PATH, secure: true, httpOnly: true, sameSite: "Strict" });
}

/** The CSRF token of every form this session posts. */
export function csrfToken(session: ConsoleSession): Promise<string> {
  return sha256Hex(`zgate console csrf\n${session.binding}`);
}

/** Whether a posted CSRF token is this session's (constant time). */
export async function validCsrf(session: ConsoleSession, presented: unknown): Promise<boolean> {
  if (typeof presented !== "string" || presented === "") return false;
  return sameSecret(presented, await csrfToken(session));
}
