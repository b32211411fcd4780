/**
 * An ECDSA signature in DER (`SEQUENCE { INTEGER r, INTEGER s }`, what GitHub and GitLab
 * send) as WebCrypto wants it: raw r||s, each left-padded to the curve's size (32 bytes
 * for P-256). Null for anything that is not exactly such a structure: a signature that
 * does not parse is a bad signature, never an exception.
 */
export function derToRawSignature(der: Uint8Array, size = 32): Uint8Array | null {
  let at = 0;
  const byte = () => (at < der.length ? der[at++]! : -1);
  if (byte() !== 0x30) return null;
  const total = byte();
  // Short-form length only: a P-256 signature is at most 72 bytes.
  if (total < 0 || total > 0x7f || total !== der.length - 2) return null;
  const out = new Uint8Array(size * 2);
  for (let part = 0; part < 2; part++) {
    if (byte() !== 0x02) return null;
    const length = byte();
    if (length <= 0 || length > size + 1 || at + length > der.length) return null;
    let value = der.subarray(at, at + length);
    at += length;
    // A leading zero only keeps a high bit from reading as negative.
    if (value.length === size + 1) {
      if (value[0] !== 0) return null;
      value = value.subarray(1);
    }
    out.set(value, part * size + (size - value.length));
  }
  return at === der.length ? out : null;
}
