import type { Stage, StageContext } from "../http/context";
import { revokeUserCredentials } from "../keys/key-lifecycle";
import { guardFor } from "../admit/guard-client";
import { actorOf } from "./identity";

/**
 * What a session's own calls do to sessions, after admission: ZakGT's logout and account
 * deletion (`revokesSession`, `deactivatesUser` in the route table).
 */

/** Logout: the presented access token is refused from now on, before the origin hears of it. */
export const revokePresentedSession: Stage = {
  before(c) {
    const identity = c.get("identity");
    if (c.get("route").revokesSession && identity?.tokenId && identity.expiresAt) {
      return guardFor(c.env, identity).revokeToken(identity.tokenId, identity.expiresAt);
    }
  },
};

/** Account deactivation: once the origin confirms it, every key and session of the user dies at the edge too. */
export const revokeDeactivatedUser: Stage = {
  after: (c) => (c.get("route").deactivatesUser ? revokeIfDeactivated(c) : undefined),
};

async function revokeIfDeactivated(c: StageContext): Promise<void> {
  const identity = c.get("identity");
  if (c.res.ok && identity?.userId) {
    await revokeUserCredentials(c.env, identity.userId, { actor: actorOf(identity), requestId: c.get("requestId") }, true);
  }
}
