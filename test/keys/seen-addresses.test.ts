import { describe, expect, it } from "vitest";
import { seenAddresses, usageHour } from "../../src/usage/usage-client";

const HOUR = 3_600_000;

describe("seenAddresses: what an append tells the address index", () => {
  it("each address once per hour it called in, calls without an address left out", () => {
    const at = 1_800_000_000_000 - (1_800_000_000_000 % HOUR);
    const calls = [
      { at, clientAddress: "203.0.113.1" },
      { at: at + 1, clientAddress: "203.0.113.1" },
      { at: at + 2, clientAddress: null },
      { at: at + 3, clientAddress: "2001:db8::1" },
      // The first address again after another: still told once for this hour.
      { at: at + 4, clientAddress: "203.0.113.1" },
      { at: at + HOUR, clientAddress: "203.0.113.1" },
    ];
    expect(seenAddresses(calls)).toEqual([
      ["203.0.113.1", usageHour(at)],
      ["2001:db8::1", usageHour(at)],
      ["203.0.113.1", usageHour(at) + 1],
    ]);
  });

  it("no calls with an address: nothing to tell", () => {
    expect(seenAddresses([{ at: 0, clientAddress: null }])).toEqual([]);
    expect(seenAddresses([])).toEqual([]);
  });
});
