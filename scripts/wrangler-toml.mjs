// Writes resource ids into one environment's tables of wrangler.toml as text, so its
// comments and layout stay as they are (wrangler's own config patching refuses a .toml
// file with comments, and skips writing in CI).
import { readFileSync, writeFileSync } from "node:fs";

/**
 * Sets `field = "value"` in the `[[env.<env>.<table>]]` whose `binding` is `binding`:
 * replaces the field's line if the table has one, or adds it below the binding line.
 * Whether the file changed.
 * @param {string[]} lines
 * @param {string} env
 * @param {string} table
 * @param {string} binding
 * @param {string} field
 * @param {string} value
 */
function setField(lines, env, table, binding, field, value) {
  const header = `[[env.${env}.${table}]]`;
  for (let at = lines.indexOf(header); at !== -1; at = lines.indexOf(header, at + 1)) {
    let end = at + 1;
    while (end < lines.length && !lines[end]?.trimStart().startsWith("[")) end++;
    const body = lines.slice(at + 1, end);
    const bindingLine = body.findIndex((l) => new RegExp(`^\\s*binding\\s*=\\s*"${binding}"`).test(l));
    if (bindingLine === -1) continue;
    const line = `${field} = "${value}"`;
    const fieldLine = body.findIndex((l) => new RegExp(`^\\s*${field}\\s*=`).test(l));
    if (fieldLine !== -1) {
      if (lines[at + 1 + fieldLine] === line) return false;
      lines[at + 1 + fieldLine] = line;
    } else lines.splice(at + 2 + bindingLine, 0, line);
    return true;
  }
  throw new Error(`${header} with binding = "${binding}" is not in wrangler.toml`);
}

/** @typedef {{ table: string, binding: string, field: string, value: string }} ResourceId */

/**
 * Writes each `{ table, binding, field, value }` into `[env.<env>]` of the file at `path`; the ones that changed it.
 * @param {string} path
 * @param {string} env
 * @param {ResourceId[]} ids
 */
export function writeIds(path, env, ids) {
  const lines = readFileSync(path, "utf8").split("\n");
  const written = ids.filter(({ table, binding, field, value }) => setField(lines, env, table, binding, field, value));
  if (written.length) writeFileSync(path, lines.join("\n"));
  return written;
}
