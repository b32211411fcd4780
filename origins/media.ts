import { crc32 } from "../src/util/crc32";

/**
 * Small, real media for the ZSky simulator: a PNG whose colours come from the prompt
 * and seed (the same inputs give the same bytes), and a video-like MP4 container
 * holding a few such frames.
 */
function hash(text: string): number {
  let h = 2166136261;
  for (const ch of new TextEncoder().encode(text)) h = Math.imul(h ^ ch, 16777619) >>> 0;
  return h;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  out.set(new TextEncoder().encode(type), 4);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

async function deflate(data: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([data as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new CompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

const PNG_SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];

/** `size` bytes that start as a PNG does, byte i then being `i & 0xff`: a large result without encoding one. */
export function largePng(size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = i & 0xff;
  out.set(PNG_SIGNATURE.slice(0, size));
  return out;
}

export async function renderPng(prompt: string, seed: number, size = 64): Promise<Uint8Array> {
  const h = hash(`${prompt}\u0000${seed}`);
  const [r, g, b] = [h & 0xff, (h >>> 8) & 0xff, (h >>> 16) & 0xff];
  const rows: number[] = [];
  for (let y = 0; y < size; y++) {
    rows.push(0); // filter: none
    for (let x = 0; x < size; x++) rows.push((r + x * 3) & 0xff, (g + y * 3) & 0xff, (b + ((x ^ y) & 0x3f)) & 0xff);
  }
  const header = new Uint8Array(13);
  const view = new DataView(header.buffer);
  view.setUint32(0, size);
  view.setUint32(4, size);
  header.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  return concat([
    new Uint8Array(PNG_SIGNATURE),
    chunk("IHDR", header),
    chunk("IDAT", await deflate(new Uint8Array(rows))),
    chunk("IEND", new Uint8Array(0)),
  ]);
}

function box(type: string, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + payload.length);
  new DataView(out.buffer).setUint32(0, out.length);
  out.set(new TextEncoder().encode(type), 4);
  out.set(payload, 8);
  return out;
}

/** `ftyp` + `mdat` of three frames: enough to be a video/mp4 download, not a playable film. */
export async function renderVideo(prompt: string, seed: number): Promise<Uint8Array> {
  const frames = await Promise.all([0, 1, 2].map((i) => renderPng(prompt, seed + i, 32)));
  return concat([box("ftyp", new TextEncoder().encode("isom\u0000\u0000\u0002\u0000isomiso2mp41")), box("mdat", concat(frames))]);
}
