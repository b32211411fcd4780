/**
 * The client address a request is counted under, from `CF-Connecting-IP` (Cloudflare sets
 * it on every request from the internet, and `wrangler dev` sets it locally; a caller
 * cannot). An IPv4 address counts as itself. An IPv6 address counts as its /64: one
 * subscriber usually holds a whole /64, so counting single addresses would give each of
 * them 2^64 fresh windows. IPv4-mapped IPv6 (`::ffff:a.b.c.d`) is the IPv4 address.
 * Undefined when the field is absent or not an address: that request has no bucket.
 */
export function clientAddress(headers: Headers): string | undefined {
  const raw = headers.get("cf-connecting-ip")?.trim();
  if (!raw) return undefined;
  if (raw.includes(":")) {
    const groups = ipv6Groups(raw);
    if (!groups) return undefined;
    if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
      return [groups[6]! >> 8, groups[6]! & 0xff, groups[7]! >> 8, groups[7]! & 0xff].join(".");
    }
    return `${groups
      .slice(0, 4)
      .map((g) => g.toString(16))
      .join(":")}::/64`;
  }
  const octets = ipv4Octets(raw);
  return octets ? octets.join(".") : undefined;
}

function ipv4Octets(text: string): number[] | undefined {
  const parts = text.split(".");
  if (parts.length !== 4 || !parts.every((p) => /^[0-9]{1,3}$/.test(p))) return undefined;
  const octets = parts.map(Number);
  return octets.every((o) => o <= 255) ? octets : undefined;
}

/** The eight 16-bit groups of an IPv6 address in any RFC 4291 text form, or undefined. */
function ipv6Groups(text: string): number[] | undefined {
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const parse = (half: string, endsAddress: boolean): number[] | undefined => {
    if (half === "") return [];
    const groups: number[] = [];
    const parts = half.split(":");
    for (const [i, part] of parts.entries()) {
      // A dotted IPv4 tail stands for the last two groups.
      if (endsAddress && i === parts.length - 1 && part.includes(".")) {
        const octets = ipv4Octets(part);
        if (!octets) return undefined;
        groups.push((octets[0]! << 8) | octets[1]!, (octets[2]! << 8) | octets[3]!);
      } else if (/^[0-9a-f]{1,4}$/i.test(part)) {
        groups.push(parseInt(part, 16));
      } else {
        return undefined;
      }
    }
    return groups;
  };
  const head = parse(halves[0]!, halves.length === 1);
  const tail = halves.length === 2 ? parse(halves[1]!, true) : [];
  if (!head || !tail) return undefined;
  if (halves.length === 1) return head.length === 8 ? head : undefined;
  // `::` stands for at least one group of zeros.
  const missing = 8 - head.length - tail.length;
  return missing >= 1 ? [...head, ...Array<number>(missing).fill(0), ...tail] : undefined;
}
