import type { MiddlewareHandler } from "hono";
import type { AppEnv, Stage, StageContext, StageErrorHandler } from "./context";

/**
 * The product pipeline's stages as one loop: each stage's `before` in order until one
 * answers, then the `after` of every stage whose `before` passed the request on, in
 * reverse order. An Error a stage throws is answered by `onError` at that stage, so the
 * stages before it still see a response and finish their own work: what Hono's compose of
 * middlewares does, without a promise, a closure and a suspended async function per stage.
 * A request holds all of those for as long as its origin takes to answer, and every
 * young-generation collection copies them for each request in flight (docs/benchmarks.md,
 * "What a request in flight holds"); and each async step is runtime work. Here a stage
 * with nothing to do costs a property read, and a synchronous one no async step.
 */
export function pipeline(onError: StageErrorHandler, ...stages: Stage[]): (c: StageContext) => Promise<void> {
  const failed = async (c: StageContext, err: unknown) => {
    if (!(err instanceof Error)) throw err;
    c.res = await onError(err, c);
  };
  return async (c) => {
    // Stages before `passed` handed the request on: theirs are the `after`s to run.
    let passed = 0;
    try {
      for (; passed < stages.length; passed++) {
        const before = stages[passed]!.before;
        if (!before) continue;
        let answer = before(c);
        if (answer instanceof Promise) answer = await answer;
        if (answer instanceof Response) {
          c.res = answer;
          break;
        }
      }
      // The last stage (the origin, or zgate's own handler) always answers.
      if (passed === stages.length) throw new Error("the pipeline ended without an answer");
    } catch (err) {
      await failed(c, err);
    }
    while (passed-- > 0) {
      const after = stages[passed]!.after;
      if (!after) continue;
      try {
        const done = after(c);
        if (done instanceof Promise) await done;
      } catch (err) {
        await failed(c, err);
      }
    }
  };
}

/** A stage as Hono middleware, for the gateway app's own routes (app.ts). */
export function asMiddleware(stage: Stage): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const answer = await stage.before?.(c);
    if (answer instanceof Response) return answer;
    await next();
    await stage.after?.(c);
  };
}
