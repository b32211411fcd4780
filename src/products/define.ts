import type { z } from "zod";
import type { Product, ProductSpec } from "./types";

/** A product as `defineProduct` makes it: the names of its settings known to the type checker too. */
export type DefinedProduct<Id extends string, S extends z.ZodRawShape> = Product<S> & {
  id: Id;
  hostsSetting: `${Uppercase<Id>}_HOSTS`;
  originSetting: `ORIGIN_${Uppercase<Id>}`;
  assertionKidSetting: `${Uppercase<Id>}_ASSERTION_KID`;
};

/**
 * A product from what its folder declares: the names of its settings follow from its id
 * (`<ID>_HOSTS`, `ORIGIN_<ID>`, `<ID>_ASSERTION_KID`, and `ORIGIN_<ID>_TEST` where it has test keys), so a new
 * product's settings need no list of their own.
 */
export function defineProduct<const Id extends string, S extends z.ZodRawShape = Record<never, never>>(
  spec: ProductSpec<S> & { id: Id },
): DefinedProduct<Id, S> {
  const id = spec.id.toUpperCase() as Uppercase<Id>;
  return {
    ...spec,
    hostsSetting: `${id}_HOSTS`,
    originSetting: `ORIGIN_${id}`,
    assertionKidSetting: `${id}_ASSERTION_KID`,
    testOriginSetting: spec.keyPrefixes.test ? `ORIGIN_${id}_TEST` : undefined,
  };
}
