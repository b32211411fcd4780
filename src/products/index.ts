import type { Settings } from "../config/settings";
import { buildRouteTable, type RouteTable } from "../route/route-table";
import type { Product } from "./types";
import { zakgt } from "./zakgt/index";
import { zappway } from "./zappway/index";
import { zsky } from "./zsky/index";

export const PRODUCTS: readonly Product[] = [zakgt, zsky, zappway];

const tables = new Map<Product, RouteTable>(PRODUCTS.map((p) => [p, buildRouteTable(p.routes)]));

export function routeTable(product: Product): RouteTable {
  return tables.get(product)!;
}

const DEFAULT_HOSTS = { ZAKGT_HOSTS: ["api.zakgt.net"], ZSKY_HOSTS: ["zsky.ai"], ZAPPWAY_HOSTS: ["app.zappway.ai"] };

export interface ProductTarget {
  product: Product;
  /** The request path as the origin knows it (host match: unchanged; prefix match: prefix removed). */
  originPath: string;
  /** The path prefix that picked the product (`/zakgt`); empty when its host did. */
  publicPrefix: string;
}

/**
 * Which platform a request is for: its host first (`api.zakgt.net`, ...), then a path
 * prefix (`/zakgt`, ...) for local use and single-host deployments. Without settings
 * (a misconfigured deployment) the default hosts still pick the error envelope.
 */
export function resolveProduct(url: URL, settings: Settings | undefined): ProductTarget | undefined {
  const byHost = resolveProductHost(url.hostname.toLowerCase(), settings);
  if (byHost) return { product: byHost, originPath: url.pathname, publicPrefix: "" };
  for (const product of PRODUCTS) {
    const prefix = product.pathPrefix;
    if (url.pathname === prefix || url.pathname.startsWith(`${prefix}/`)) {
      return { product, originPath: url.pathname.slice(prefix.length) || "/", publicPrefix: prefix };
    }
  }
  return undefined;
}

/** The product whose own host this is (lowercase hostname), if any. */
export function resolveProductHost(host: string, settings: Settings | undefined): Product | undefined {
  return PRODUCTS.find((product) => (settings ? settings[product.hostsSetting] : DEFAULT_HOSTS[product.hostsSetting]).includes(host));
}
