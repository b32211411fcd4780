import { AwsClient } from "aws4fetch";
import type { Settings } from "../../../config/settings";
import { RESULT_URL_SECONDS } from "./signed-url";

/** True when R2's S3 credentials are configured: result URLs then go straight to the bucket. */
export const presignConfigured = (s: Settings) =>
  Boolean(s.R2_ACCOUNT_ID && s.R2_ACCESS_KEY_ID && s.R2_SECRET_ACCESS_KEY && s.R2_BUCKET_NAME);

/**
 * An S3 SigV4 presigned GET for the object, valid RESULT_URL_SECONDS from `now`. The
 * signed `response-content-disposition` makes R2 answer with the disposition zgate's
 * own download would send (attachment for anything not a raster image or video), also
 * for objects stored before their type was checked.
 */
export async function presignResultUrl(settings: Settings, objectKey: string, disposition: string, now: number): Promise<string> {
  const client = new AwsClient({
    accessKeyId: settings.R2_ACCESS_KEY_ID!,
    secretAccessKey: settings.R2_SECRET_ACCESS_KEY!,
    service: "s3",
    region: "auto",
  });
  // The object key is itself percent-encoded (account ids may hold any character); S3
  // decodes the path once, so each segment is encoded again to name exactly that key.
  const path = [settings.R2_BUCKET_NAME!, ...objectKey.split("/")].map(encodeURIComponent).join("/");
  const url = new URL(`https://${settings.R2_ACCOUNT_ID}.r2.cloudflarestorage.com/${path}`);
  url.searchParams.set("X-Amz-Expires", String(RESULT_URL_SECONDS));
  url.searchParams.set("response-content-disposition", disposition);
  const signed = await client.sign(new Request(url, { method: "GET" }), {
    aws: { signQuery: true, datetime: new Date(now).toISOString().replace(/[:-]|\.\d{3}/g, "") },
  });
  return signed.url;
}
