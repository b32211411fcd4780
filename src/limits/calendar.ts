/** UTC calendar periods for quotas: days reset at 00:00 UTC, months on the 1st at 00:00 UTC. */
export const utcDay = (now: number) => new Date(now).toISOString().slice(0, 10);
export const utcMonth = (now: number) => new Date(now).toISOString().slice(0, 7);

export function nextUtcDay(now: number): number {
  const d = new Date(now);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1);
}

export function nextUtcMonth(now: number): number {
  const d = new Date(now);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}

export function previousUtcMonth(month: string): string {
  const [y, m] = month.split("-").map(Number) as [number, number];
  return new Date(Date.UTC(y, m - 2, 1)).toISOString().slice(0, 7);
}

/** Whole seconds until `at`, never less than 1: what Retry-After may say. */
export const retryAfterSeconds = (at: number, now: number) => Math.max(1, Math.ceil((at - now) / 1000));
