import { z } from "zod";
import { hostList, jsonText, optionalString, positiveInt } from "../../config/setting-types";
import type { ProductSettings } from "../types";

const fields = {
  // Signing keys for result download URLs, {"<kid>": "<secret>"}, and the kid to sign with.
  // Old kids stay listed until their URLs have expired (24 h) so rotation breaks nothing.
  RESULT_SIGNING_KEYS: optionalString.pipe(
    jsonText
      .pipe(z.record(z.string().regex(/^[A-Za-z0-9_-]{1,32}$/), z.string().min(32, "each secret must be at least 32 characters")))
      .optional(),
  ),
  RESULT_SIGNING_KEY_ID: optionalString,
  // R2's S3 API, for presigned result URLs straight to the bucket (all four, or none).
  R2_ACCOUNT_ID: optionalString,
  R2_ACCESS_KEY_ID: optionalString,
  R2_SECRET_ACCESS_KEY: optionalString,
  R2_BUCKET_NAME: optionalString,
  // ZSky results: the largest one zgate stores (streamed into R2, so memory stays flat
  // whatever the size), and hosts besides ORIGIN_ZSKY a result may be pulled from
  // (`host` or `host:port`, HTTPS only outside development).
  MAX_RESULT_BYTES: positiveInt(104_857_600),
  ZSKY_RESULT_HOSTS: hostList.default([]),
};

/** ZSky's results: how their links are signed, where they may be pulled from and how large they may be. */
export const zskySettings: ProductSettings<typeof fields> = {
  fields,
  secrets: ["RESULT_SIGNING_KEYS", "R2_ACCESS_KEY_ID", "R2_SECRET_ACCESS_KEY"],
  features: {
    "presigned-results": { settings: ["R2_ACCOUNT_ID", "R2_ACCESS_KEY_ID", "R2_SECRET_ACCESS_KEY", "R2_BUCKET_NAME"] },
    // Result links have keys of their own, so rotating the origin assertion keys never breaks a live link.
    "result-links": { settings: ["RESULT_SIGNING_KEYS", "RESULT_SIGNING_KEY_ID"], requires: "RESULT_SIGNING_KEYS" },
  },
  crossCheck(s, ctx) {
    if (s.RESULT_SIGNING_KEYS && !(s.RESULT_SIGNING_KEY_ID && s.RESULT_SIGNING_KEYS[s.RESULT_SIGNING_KEY_ID])) {
      ctx.addIssue({ code: "custom", path: ["RESULT_SIGNING_KEY_ID"], message: "must name one of RESULT_SIGNING_KEYS" });
    }
    const s3 = [s.R2_ACCOUNT_ID, s.R2_ACCESS_KEY_ID, s.R2_SECRET_ACCESS_KEY, s.R2_BUCKET_NAME].filter(Boolean).length;
    if (s3 !== 0 && s3 !== 4) {
      ctx.addIssue({
        code: "custom",
        path: ["R2_ACCESS_KEY_ID"],
        message: "R2_ACCOUNT_ID, R2_ACCESS_KEY_ID, R2_SECRET_ACCESS_KEY and R2_BUCKET_NAME go together",
      });
    }
  },
};
