import { z } from "zod";

/**
 * The largest limits anyone may set (deployment LIMIT_OVERRIDES, a key's own override).
 * The guard keeps state for every window it counts, so a window of months or a limit in
 * the billions would hold storage and memory far beyond any real plan; docs/security.md
 * ("What zgate refuses") lists these maximums.
 */
export const MAX_WINDOW_SECONDS = 86_400;
export const MAX_WINDOW_LIMIT = 1_000_000;
export const MAX_ALLOWANCE = 1_000_000;
export const MAX_CONCURRENT_JOBS = 1_000;

/**
 * How long a ZSky job stays the account's after its submission (zsky-api.txt "Storage &
 * Retention": assets remain available for re-fetch for 7 days, then auto-delete). Counted
 * from the submission, so a late first poll never stretches it.
 */
export const JOB_RETENTION_MS = 7 * 86_400_000;

export const windowLimit = z.number().int().positive().max(MAX_WINDOW_LIMIT);
export const windowSeconds = z.number().int().positive().max(MAX_WINDOW_SECONDS);
/** A daily or monthly generation allowance (0 turns the kind off). */
export const allowance = z.number().int().min(0).max(MAX_ALLOWANCE);
