import type { Stage, StageContext, StageErrorHandler, StageNext } from "./context";

/**
 * The product pipeline's stages as one stage, run as Hono runs a route's handlers (a
 * stage's returned Response becomes `c.res`; an Error a stage throws becomes `onError`'s
 * answer at that stage, so the stages around it still see a response and finish their own
 * work), but without an async step per stage. Hono's compose awaits every stage in an
 * async function of its own: for the product pipeline's 13 stages that was some 40 promise
 * continuations a request, most of them around stages with nothing to do, and
 * continuations were the largest part of zgate's CPU over the contract floor
 * (docs/benchmarks.md). Here a stage that hands back its `next()` unchanged adds none.
 * The gateway app runs it on Hono's context, a product host on a ProductContext (app.ts).
 */
export function pipeline(onError: StageErrorHandler, ...stages: Stage[]): Stage {
  return (c: StageContext, next: StageNext) => {
    let index = -1;
    const keep = (res: unknown) => {
      if (res instanceof Response && !c.finalized) c.res = res;
    };
    const failed = async (err: unknown) => {
      if (!(err instanceof Error)) throw err;
      c.error = err;
      c.res = await onError(err, c);
    };
    const dispatch = (i: number): Promise<void> => {
      if (i <= index) return Promise.reject(new Error("next() called multiple times"));
      index = i;
      const stage = stages[i];
      if (!stage) return next();
      let rest: Promise<void> | undefined;
      let out: ReturnType<Stage>;
      try {
        out = stage(c, () => (rest = dispatch(i + 1)));
      } catch (err) {
        return failed(err);
      }
      // Passed on as it was: whatever the later stages answered (or threw) is already settled there.
      if (out === rest) return rest!;
      if (out instanceof Promise) return out.then(keep, failed);
      keep(out);
      return Promise.resolve();
    };
    return dispatch(0);
  };
}
