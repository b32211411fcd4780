import type { Reporter, TestModule } from "vitest/node";

/**
 * Names every test that passed only when tried again (vitest.config.ts's `retry`), with
 * what its first try failed on, at the end of the run: a retry lets a run on a loaded
 * machine land, and this keeps what it let through in sight, to be fixed rather than
 * forgotten. vitest's own output marks such a test `(retry x1)` only where it lists it.
 */
export default class RetriedReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    const retried: string[] = [];
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const result = test.result();
        if (result.state !== "passed" || !test.diagnostic()?.retryCount) continue;
        const firstError = result.errors?.[0]?.message.split("\n")[0] ?? "(no error kept)";
        retried.push(`  ${module.relativeModuleId} > ${test.fullName}\n    first try: ${firstError}`);
      }
    }
    if (retried.length === 0) return;
    console.log(`\nPassed only when tried again (load or a flaky test: worth a look):\n${retried.join("\n")}`);
  }
}
