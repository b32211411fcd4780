// One encoder for the isolate: constructing a TextEncoder is a call into the runtime, and
// the keyed path encodes several strings a request (the key's hash and checksum, the signature).
const encoder = new TextEncoder();

/** The UTF-8 bytes of a string. */
export function utf8(text: string): Uint8Array<ArrayBuffer> {
  return encoder.encode(text) as Uint8Array<ArrayBuffer>; // always a new, unshared buffer
}
