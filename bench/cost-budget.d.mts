// The types of bench/cost-budget.mjs as its importers see them (the TypeScript tests,
// bench/cost.mjs); the module itself is checked against them (tsconfig.scripts.json).
export declare const COST_CASES: string[];
export declare const TARGETS: Record<string, number>;
export declare const KEPT_PER_NEW_ADDRESS: number;
export declare const HOT_KEYED: string[];
export declare const JOB_CASE_IDS: string[];
export declare function isJobCase(id: string): boolean;
export declare const ROWS_WRITTEN_PER_HOT_REQUEST: number;
export declare const ROW_BUDGET_ENFORCED: boolean;
/** A hot keyed case that wrote more rows per request than the budget. */
export interface Overspend {
  id: string;
  rowsWritten: number;
  budget: number;
}
export declare function overBudget(result: { cases: { id: string; median: { counts: { rowsWritten: number } } }[] }): Overspend[];
