import type { Product } from "./types";

/**
 * Paths zgate keeps for its own surface on gateway hosts: no product prefix may take them,
 * so a path under a product's prefix is always that product's (app.ts relies on it).
 */
const OWN_PREFIXES = ["/admin", "/security", "/docs", "/openapi.json", "/healthz"];

/**
 * What a product lacks, or takes from another registered one, as sentences naming the
 * piece. The type checker sees that each piece is there; this sees what it cannot: that
 * the pieces agree with each other and with the other products.
 */
export function productProblems(product: Product, others: readonly Product[]): string[] {
  const problems: string[] = [];
  const other = others.filter((p) => p !== product);
  if (!/^[a-z][a-z0-9]*$/.test(product.id)) problems.push("its id must be lowercase letters and digits (it names its settings)");
  if (other.some((p) => p.id === product.id)) problems.push(`the id ${product.id} is taken`);
  if (!/^\/[a-z0-9-]+$/.test(product.pathPrefix) || OWN_PREFIXES.includes(product.pathPrefix))
    problems.push(`path prefix ${product.pathPrefix} is not a path of its own`);
  if (other.some((p) => p.pathPrefix === product.pathPrefix)) problems.push(`path prefix ${product.pathPrefix} is taken`);
  if (product.defaultHosts.length === 0) problems.push("no default host");
  for (const host of product.defaultHosts)
    if (other.some((p) => p.defaultHosts.includes(host))) problems.push(`host ${host} is another product's`);

  const prefixes = Object.entries(product.keyPrefixes);
  for (const [mode, prefix] of prefixes)
    if (!new RegExp(`^[a-z]+_${mode}_$`).test(prefix!)) problems.push(`key prefix ${prefix} is not <name>_${mode}_`);
  const taken = other.flatMap((p) => Object.values(p.keyPrefixes));
  for (const [, prefix] of prefixes)
    if (taken.some((t) => t!.startsWith(prefix!) || prefix!.startsWith(t!)))
      problems.push(`key prefix ${prefix} overlaps another product's`);

  // Its envelope and its documented error schema are one shape.
  if (!product.errorSchema.safeParse(product.envelope("NOT_FOUND", "Not Found")).success)
    problems.push("its envelope does not match its error schema");
  if (product.referenceStatuses.length === 0) problems.push("no reference statuses");
  if (product.routes.some((r) => r.auth === "required") && Object.keys(product.securitySchemes).length === 0)
    problems.push("keyed routes but no security scheme");

  const own = new Set(Object.keys(product.settings?.fields ?? {}));
  const settings = product.settings;
  const listed = [
    ...(settings?.secrets ?? []),
    ...(settings?.urls ?? []),
    ...Object.values(settings?.features ?? {}).flatMap((f) => [...f.settings, ...(f.requires ? [f.requires] : [])]),
  ];
  for (const name of listed) if (!own.has(name)) problems.push(`setting ${name} is listed but not among its settings`);

  const names = new Set<string>();
  for (const route of product.routes) {
    if (names.has(route.name)) problems.push(`route name ${route.name} is used twice`);
    names.add(route.name);
    if (route.generates && !product.limits.generation) problems.push(`route ${route.name} generates, but it has no generation limits`);
  }
  // A policy naming a route that is not there would silently limit nothing.
  for (const window of product.limits.windows)
    for (const name of [...(window.routes ?? []), ...(window.exceptRoutes ?? [])])
      if (!names.has(name)) problems.push(`window ${window.name} names route ${name}, which it does not have`);
  return problems;
}
