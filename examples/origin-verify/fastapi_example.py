"""A FastAPI origin that trusts only requests zgate signed (needs `pip install fastapi uvicorn`;
the verifier itself, zgate_verify.py, needs nothing beyond the standard library).

    ZGATE_ORIGIN_SECRETS=<ORIGIN_SIGNING_SECRET> uvicorn fastapi_example:app --port 8701

During a rotation ZGATE_ORIGIN_SECRETS holds the new and the old secret, comma-separated
(docs/deploy.md, "Rotate ORIGIN_SIGNING_SECRET"). A refusal is ZakGT's own 401 envelope,
{"detail": "..."}; the reason goes to the log, never to the caller.
"""

import logging

from fastapi import Depends, FastAPI, HTTPException, Request

from zgate_verify import Identity, Refused, Verifier, secrets_from_env

log = logging.getLogger("zgate")
verifier = Verifier(secrets_from_env())


async def zgate_identity(request: Request) -> Identity:
    """A dependency: the caller zgate vouches for, or 401."""
    body = await request.body()  # cached by Starlette: the endpoint can still read it
    # The target exactly as received: `request.url.path` is percent-decoded, the signature is not.
    target = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1")
    query = request.scope.get("query_string", b"").decode("latin-1")
    try:
        return verifier.verify(request.method, target + ("?" + query if query else ""), request.headers, body)
    except Refused as refused:
        log.warning("zgate signature refused: %s", refused.reason)
        raise HTTPException(status_code=401, detail="Untrusted gateway identity") from None


app = FastAPI()


@app.get("/api/v1/users/me")
async def me(identity: Identity = Depends(zgate_identity)) -> dict:
    return {"id": identity.user, "request_id": identity.request_id}
