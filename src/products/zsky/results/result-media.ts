/**
 * What a ZSky result may be. Only raster images and video are stored: anything else an
 * origin hands over (SVG, HTML, ...) could run script when opened from a download link.
 */
const RESULT_MEDIA_TYPES = new Set(["image/png", "image/jpeg", "image/webp", "image/gif", "video/mp4", "video/webm"]);

/** The result's media type from the origin's Content-Type, or null when it is not one zgate stores. */
export function resultMediaType(contentType: string | null): string | null {
  const type = (contentType ?? "").split(";")[0]!.trim().toLowerCase();
  return RESULT_MEDIA_TYPES.has(type) ? type : null;
}

/**
 * Content-Disposition for a stored result: shown in the browser only when it is a raster
 * image or video. zgate stores nothing else, but the bucket is not only zgate's to write:
 * anything else found there downloads.
 */
export const resultDisposition = (contentType: string | null | undefined) =>
  resultMediaType(contentType ?? null) ? "inline" : "attachment";
