import type { z } from "@hono/zod-openapi";
import { utf8 } from "../util/utf8";
import type { CallSchema } from "./call-view";

/** A key's calls as a file: one JSON object a line (NDJSON) or CSV with a header row. */
export type ExportFormat = "ndjson" | "csv";

export type ExportedCall = z.infer<typeof CallSchema> & { key_id: string };

export const EXPORT_MEDIA_TYPES: Record<ExportFormat, string> = {
  ndjson: "application/x-ndjson",
  csv: "text/csv; charset=utf-8",
};

const CSV_COLUMNS = [
  "time",
  "key_id",
  "method",
  "path",
  "status",
  "outcome",
  "client_address",
  "country",
  "asn",
  "user_agent",
  "request_id",
] as const satisfies readonly (keyof ExportedCall)[];

/**
 * One CSV cell. Text is always quoted (quotes doubled), and text a spreadsheet would read
 * as a formula (starting with =, +, -, @, a tab or a carriage return: a user agent or a
 * path is whatever the caller sent) gets a leading apostrophe, so it is shown, never run.
 */
function csvCell(value: string | number | null): string {
  if (value === null) return "";
  if (typeof value === "number") return String(value);
  const text = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return `"${text.replace(/"/g, '""')}"`;
}

/** The file's first line, if the format has one. */
function exportHeader(format: ExportFormat): string {
  return format === "csv" ? `${CSV_COLUMNS.join(",")}\r\n` : "";
}

function exportLine(format: ExportFormat, call: ExportedCall): string {
  if (format === "ndjson") return `${JSON.stringify(call)}\n`;
  return `${CSV_COLUMNS.map((column) => csvCell(call[column])).join(",")}\r\n`;
}

/** The lines as a byte stream, `linesPerChunk` encoded at a time as the client reads. */
export function exportStream(format: ExportFormat, calls: ExportedCall[], linesPerChunk = 500): ReadableStream<Uint8Array> {
  let next = 0;
  return new ReadableStream({
    start(controller) {
      const header = exportHeader(format);
      if (header) controller.enqueue(utf8(header));
    },
    pull(controller) {
      const lines = calls.slice(next, next + linesPerChunk).map((call) => exportLine(format, call));
      next += linesPerChunk;
      if (lines.length > 0) controller.enqueue(utf8(lines.join("")));
      if (next >= calls.length) controller.close();
    },
  });
}
