import type { StageContext } from "../../http/context";

/**
 * ZSky `GET /v1/usage`, answered from the guard's counters in the reference's shape.
 * `*_used` counts every generation this UTC month (base and overage, blocked ones too);
 * `*_overage` is the part beyond the base allowance.
 */
export function zskyUsage(c: StageContext) {
  return Response.json(c.get("admission").usage!);
}
