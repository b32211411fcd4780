import type { Settings } from "../config/settings";
import type { Env } from "../env";
import { leasable, type AdmitDecision, type AdmitRequest } from "../limits/guard-protocol";
import { leaseBookFor } from "./lease-book";
import { upstashAdmission } from "./upstash-windows";
import { madeOnce } from "../util/made-once";

/** The guard of one request's credential (or client address). */
export type GuardStub = ReturnType<Env["ACCOUNT_GUARD"]["get"]>;

/** How an admission reaches the request's guard and keeps work alive after the response. */
export interface AdmissionLink {
  /** Resolved only when called: a request admitted from a lease never needs the stub. */
  guard(): GuardStub;
  /** The guard object's name: the lease book renews the leases it holds on one object together. */
  guardName: string;
  /** Where the isolate's lease book keeps this request's leases (guard-protocol.ts leaseBookKey). */
  bookKey: string;
  waitUntil(work: Promise<unknown>): void;
  /**
   * Told as admission asks the guard about this request, in the request's own context
   * (never for a renewal: the lease book renews through the latest request's link, for others too).
   */
  asking?(): void;
}

/**
 * One decision for one request: credential status, sliding windows, allowances, job
 * slots and suspension. Two implementations count the sliding windows in different
 * places; the edge reads their decisions the same way:
 * - the guard (default): everything in one guard call, or a token of a guard lease;
 * - Upstash (LIMITER_BACKEND=upstash): the guard for everything but the windows, which
 *   Redis counts; a reservation the guard made for a request Redis then refuses is given
 *   back inside (upstash-windows.ts).
 */
export interface Admission {
  admit(request: AdmitRequest, link: AdmissionLink): Promise<AdmitDecision>;
}

/** The guard counts the windows too: one call, or a token of a lease when the request may be leased. */
function guardAdmission(settings: Settings): Admission {
  return {
    admit(request, link) {
      const ask = (asked: AdmitRequest) => {
        link.asking?.();
        return link.guard().admit(asked);
      };
      const book = leasable(request) ? leaseBookFor(settings) : undefined;
      if (!book) return ask(request);
      return book.admit(link.bookKey, request, {
        name: link.guardName,
        ask,
        renew: (requests, returns) => link.guard().renewLeases(requests, returns),
        renewShares: (shares, returns) => link.guard().renewShares(shares, returns),
        refund: (returns) => link.guard().refundLeases(returns),
        waitUntil: link.waitUntil,
      });
    },
  };
}

const admissions = new WeakMap<Settings, Admission>();

/** The admission of these settings, made once per parsed settings (it is asked for on every request). */
export function admissionFor(settings: Settings): Admission {
  return (
    admissions.get(settings) ??
    madeOnce(admissions, settings, () => (settings.LIMITER_BACKEND === "upstash" ? upstashAdmission(settings) : guardAdmission(settings)))
  );
}
