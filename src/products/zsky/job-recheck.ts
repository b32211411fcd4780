import type { StageContext } from "../../http/context";
import { addOriginAssertion } from "../../forward/origin-assertion";
import { originFor } from "../../forward/forward";
import type { OutgoingHeaders } from "../../forward/origin-headers";
import { jobEnded, terminalStatus, type TerminalStatus } from "./results/job-state";
import { guardFor } from "../../admit/guard-client";
import type { GenerationLimits } from "../../limits/types";

/** The whole re-check's time budget: a refused submit must come back promptly whatever the origin does. */
const RECHECK_BUDGET_MS = 2000;

/**
 * ZSky's concurrency limit counts jobs running at the origin, but zgate sees a job end
 * only when its owner polls it: a job that finished unpolled would keep its slot. So
 * before a concurrency refusal stands, the key's slot-holding jobs are asked about at
 * the origin, all at once, within RECHECK_BUDGET_MS (and at most once a second per key,
 * the guard decides), and the ended ones release their slots. The guard is not the one
 * to ask: it would hold up every other request of the account while it waits.
 * True when a slot was released, so admission is worth asking again. An origin that
 * fails or is slow releases nothing and the refusal stands.
 */
export async function releaseFinishedJobs(c: StageContext, generation: GenerationLimits): Promise<boolean> {
  const identity = c.get("identity");
  if (!identity?.keyId) return false;
  const jobIds = await guardFor(c.env, identity).jobsToRecheck(identity.keyId);
  const signal = AbortSignal.timeout(Math.min(RECHECK_BUDGET_MS, c.get("settings").ORIGIN_TIMEOUT_MS));
  const statuses = await Promise.all(jobIds.map((jobId) => originStatus(c, jobId, signal)));
  let released = false;
  for (const [i, status] of statuses.entries()) {
    if (status && (await jobEnded(c.env, identity, jobIds[i]!, status, generation)).finished) released = true;
  }
  return released;
}

/** The job's terminal status at the origin (`GET /v1/jobs/{id}`, as zgate forwards a poll); null if it runs or the origin did not say. */
async function originStatus(c: StageContext, jobId: string, signal: AbortSignal): Promise<TerminalStatus | null> {
  const path = `/v1/jobs/${encodeURIComponent(jobId)}`;
  const origin = originFor(c);
  const headers: OutgoingHeaders = {};
  await addOriginAssertion(headers, c.get("settings"), {
    method: "GET",
    origin,
    path,
    query: "",
    product: c.get("target").product,
    identity: c.get("identity"),
    requestId: c.get("requestId"),
  });
  try {
    // Not fetchOrigin(): this call has the re-check's budget, not ORIGIN_TIMEOUT_MS, and its failure is no error.
    const response = await fetch(origin + path, { headers, redirect: "manual", signal });
    if (!response.ok) {
      await response.body?.cancel();
      return null;
    }
    return terminalStatus((await response.json()) as Record<string, unknown> | null, jobId);
  } catch {
    return null;
  }
}
