/**
 * What is matched and authorised must be what the origin routes. The route table splits
 * on `/` and compares raw segments; an origin's framework may collapse `//`, decode
 * `%2F` or `%5C` into separators, or resolve `..` (and Tomcat's `..;`), and then route a
 * request zgate authorised for one path (say `agents/..%2fdatastores`, which matched the
 * agents module) to another. Such paths are refused before routing, so the origin
 * receives exactly the path zgate matched. (The URL parser has already resolved literal
 * and `%2E` dot segments and turned `\` into `/`.) One trailing slash is allowed:
 * references write `/tools/` and the route table matches it as `/tools`.
 */
export function pathProblem(path: string): string | undefined {
  const segments = path.split("/").slice(1);
  for (let i = 0; i < segments.length; i++) {
    const raw = segments[i]!;
    if (raw === "") {
      if (i === segments.length - 1) continue;
      return "Empty path segment";
    }
    // Most segments have no escape to decode: the segment is then itself (no decode, no copy).
    let segment = raw;
    if (raw.includes("%")) {
      try {
        segment = decodeURIComponent(raw);
      } catch {
        return "Malformed percent-encoding in path";
      }
    }
    // One test per segment (this runs on every request); which problem it is, only when there is one.
    if (ANY_PROBLEM.test(segment)) return segmentProblem(segment);
  }
  return undefined;
}

const SEPARATOR = /[/\\]/;
const DOT_SEGMENT = /^\.\.?(?:;|$)/;
const CONTROL = /[\u0000-\u001f\u007f]/;
const ANY_PROBLEM = new RegExp([SEPARATOR, DOT_SEGMENT, CONTROL].map((r) => r.source).join("|"));

function segmentProblem(segment: string): string {
  if (SEPARATOR.test(segment)) return "Encoded slash or backslash in path";
  if (DOT_SEGMENT.test(segment)) return "Dot segment in path";
  return "Control character in path";
}
