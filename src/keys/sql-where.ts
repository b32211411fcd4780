/** Builds a parameterised WHERE clause from optional filters (values are always bound, never inlined). */
export function whereBuilder() {
  const clauses: string[] = [];
  const args: (string | number)[] = [];
  return {
    add(clause: string, ...values: (string | number)[]) {
      clauses.push(clause);
      args.push(...values);
    },
    get sql() {
      return clauses.length ? `WHERE ${clauses.join(" AND ")}` : "";
    },
    args,
  };
}
