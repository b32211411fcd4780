import { productSettings, type Settings } from "../config/settings";
import { buildRouteTable, type RouteTable } from "../route/route-table";
import { productProblems } from "./completeness";
import type { Product, ProductId } from "./types";
import { zakgt } from "./zakgt/index";
import { zappway } from "./zappway/index";
import { zsky } from "./zsky/index";

/**
 * The registry: the products zgate serves, in the order every list shows them. Every
 * list of products (settings, key prefixes, the admin API's product names, the OpenAPI
 * document, the console's filters, `npm start`'s simulators, `npm run check`) is read
 * from here, so a product is its folder plus its name below. A function, read on first
 * use: a module of a product's folder may be loaded first, and the list must not be made
 * before every product is.
 */
export const builtInProducts = () => [zakgt, zsky, zappway] as const;

let registered: Product[] | undefined;
/** Bumped by every change of the list: what was derived from an older list is derived again. */
let revision = 0;

export function products(): readonly Product[] {
  return (registered ??= [...builtInProducts()]);
}

export function productById(id: ProductId): Product | undefined {
  return products().find((p) => p.id === id);
}

/**
 * Adds a product to the registry; returns how to take it away again. The built-in ones
 * are listed above: this is how a test serves a fourth one (test/fixtures/products/).
 * A product missing a piece, or clashing with one registered, is refused, naming it.
 */
export function registerProduct(product: Product): () => void {
  const list = products() as Product[];
  const problems = productProblems(product, list);
  if (problems.length > 0) throw new Error(`product ${product.id}: ${problems.join("; ")}`);
  list.push(product);
  revision++;
  return () => {
    const at = list.indexOf(product);
    if (at < 0) return;
    list.splice(at, 1);
    revision++;
  };
}

/** A value derived from the registered products, computed on first use and again after the list changes. */
export function fromRegistry<T>(derive: (products: readonly Product[]) => T): () => T {
  let at = -1;
  let value: T;
  return () => {
    if (at !== revision) {
      value = derive(products());
      at = revision;
    }
    return value;
  };
}

const tables = fromRegistry((list) => new Map<Product, RouteTable>(list.map((p) => [p, buildRouteTable(p.routes)])));

export function routeTable(product: Product): RouteTable {
  const table = tables().get(product);
  if (!table) throw new Error(`product ${product.id} is not registered`);
  return table;
}

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
  // Read once each: a URL's fields are the runtime's, and each read makes a new string.
  const path = url.pathname;
  const byHost = resolveProductHost(url.hostname.toLowerCase(), settings);
  if (byHost) return { product: byHost, originPath: path, publicPrefix: "" };
  const product = productOfPrefix(path);
  if (!product) return undefined;
  const prefix = product.pathPrefix;
  return { product, originPath: path.slice(prefix.length) || "/", publicPrefix: prefix };
}

// Asked twice a request (the app's host choice, then the route). A prefix is one path
// segment (completeness.ts), so the path's first segment is looked up, not each prefix tried.
const byPrefix = fromRegistry((list) => new Map(list.map((product) => [product.pathPrefix, product])));

/** The product whose path prefix (`/zakgt`, ...) the path is under, if any. */
export function productOfPrefix(pathname: string): Product | undefined {
  const end = pathname.indexOf("/", 1);
  return byPrefix().get(end < 0 ? pathname : pathname.slice(0, end));
}

/** The product whose own host this is (lowercase hostname), if any. */
export function resolveProductHost(host: string, settings: Settings | undefined): Product | undefined {
  if (!settings) return products().find((product) => product.defaultHosts.includes(host));
  return hostIndex(settings).get(host);
}

// Every request asks twice (zgate's own surface, then the product) which product a host
// is: one map per parsed settings and list of products, instead of each product's hosts
// read by their setting's name each time.
const hostIndexes = new WeakMap<Settings, { revision: number; byHost: Map<string, Product> }>();

function hostIndex(settings: Settings): Map<string, Product> {
  let index = hostIndexes.get(settings);
  if (!index || index.revision !== revision) {
    const byHost = new Map<string, Product>();
    for (const product of products()) {
      // The first product listing a host has it, as a search in registry order would find.
      for (const host of productSettings(settings, product).hosts) if (!byHost.has(host)) byHost.set(host, product);
    }
    index = { revision, byHost };
    hostIndexes.set(settings, index);
  }
  return index.byHost;
}
