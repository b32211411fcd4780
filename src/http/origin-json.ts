const parsed = new WeakMap<Response, Promise<Record<string, unknown> | null>>();

/**
 * An origin response's JSON object body (null when it is not one), read from a clone
 * so the caller still gets the bytes, and read once per response however many stages
 * (ZSky settlement, ZSky jobs) ask.
 */
export function originJson(response: Response): Promise<Record<string, unknown> | null> {
  let body = parsed.get(response);
  if (!body) {
    body = response
      .clone()
      .json()
      .then(
        (value: unknown) => (value && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : null),
        () => null,
      );
    parsed.set(response, body);
  }
  return body;
}
