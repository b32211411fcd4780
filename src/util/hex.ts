const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, "0"));

/** Lowercase hex of some bytes (a digest or MAC): it runs on every request (the key's hash). */
export function toHex(bytes: ArrayBuffer | Uint8Array): string {
  const view = (bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes)) as Uint8Array & { toHex?: () => string };
  // The runtime's own (workerd's V8 has it; Node 20, where scripts and Node tests run, has not): one call, one string.
  if (view.toHex) return view.toHex();
  let out = "";
  for (let i = 0; i < view.length; i++) out += HEX[view[i]!];
  return out;
}
