"""A FastAPI origin that trusts only requests zgate asserted (needs `pip install fastapi uvicorn`
besides zgate_verify.py's PyJWT).

    ZGATE_JWKS_URL=https://gateway.example.com/.well-known/jwks.json \
    ZGATE_ORIGIN=https://origin-api.zakgt.net uvicorn fastapi_example:app --port 8701

A refusal is ZakGT's own 401 envelope, {"detail": "..."}; the reason goes to the log,
never the assertion, never to the caller.
"""

import logging
import os

from fastapi import Depends, FastAPI, HTTPException, Request

from zgate_verify import Identity, Refused, Verifier

log = logging.getLogger("zgate")
verifier = Verifier(audience="zakgt", origin=os.environ["ZGATE_ORIGIN"], jwks_url=os.environ["ZGATE_JWKS_URL"])


async def zgate_identity(request: Request) -> Identity:
    """A dependency: the caller zgate vouches for, or 401."""
    body = await request.body()  # cached by Starlette: the endpoint can still read it
    # The target exactly as received: `request.url.path` is percent-decoded, the assertion is not.
    target = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1")
    query = request.scope.get("query_string", b"").decode("latin-1")
    try:
        return verifier.verify(request.method, target + ("?" + query if query else ""), request.headers.get("x-zgate-assertion"), body)
    except Refused as refused:
        log.warning("zgate assertion refused: %s", refused.reason)
        raise HTTPException(status_code=401, detail="Untrusted gateway identity") from None


app = FastAPI()


@app.get("/api/v1/users/me")
async def me(identity: Identity = Depends(zgate_identity)) -> dict:
    return {"id": identity.user, "request_id": identity.request_id}
