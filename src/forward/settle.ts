import type { Stage } from "../http/context";

/**
 * The route's own bookkeeping of the exchange (its `settle` step: ZSky's jobs), once the
 * answer is made and before the caller sees it. A step may send what no caller can
 * outrun after the answer instead (waitUntil): ZSky's accepted submissions and completed
 * jobs, whose polls and submits the guard orders itself (products/zsky/jobs.ts).
 */
export const settle: Stage = {
  after: (c) => c.get("route").settle?.(c),
};
