"""Verifying zgate's assertion at an origin, with PyJWT (docs/origin-signature.md).

    pip install "pyjwt[crypto]"     # Debian: apt install python3-jwt python3-cryptography

    from zgate_verify import Refused, Verifier

    verifier = Verifier(
        audience="zakgt",                                  # this origin's product id
        origin="https://origin-api.zakgt.net",             # this origin's ORIGIN_<ID>, as zgate calls it
        jwks_url="https://gateway.example.com/.well-known/jwks.json",  # or jwks=<the set `npm run jwks` exported>
    )
    identity = verifier.verify(method, raw_path_and_query, headers.get("x-zgate-assertion"), body)
    # raises Refused: answer 401 in the platform's envelope and log .reason, never the assertion
"""

import base64
import dataclasses
import hashlib
import threading
import time
from typing import Callable, Optional

import jwt

SKEW_SECONDS = 30
LIFETIME_SECONDS = 60
CLAIMS = ["iss", "aud", "iat", "exp", "jti", "htm", "htu", "query_digest", "content_digest", "request_id"]


class Refused(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclasses.dataclass
class Identity:
    request_id: str
    jti: str
    subject: Optional[str] = None  # the key id for a key, the user id for a session
    account: Optional[str] = None
    user: Optional[str] = None
    key_id: Optional[str] = None


def digest(data: bytes) -> str:
    """RFC 9530 digest: sha-256=:<base64>:"""
    return "sha-256=:" + base64.b64encode(hashlib.sha256(data).digest()).decode() + ":"


class MemoryReplayGuard:
    """Assertion ids seen and not yet expired, in this process. Several processes need one
    shared store instead: Redis `SET <jti> 1 NX EXAT <exp + 30>` is the same check."""

    def __init__(self):
        self._seen = {}
        self._lock = threading.Lock()

    def first_use(self, jti: str, until: float, now: float) -> bool:
        with self._lock:
            # Oldest first (a dict keeps insertion order, and ids come about in the order they
            # expire): stop at the first live one, rather than read every id of the last 90 s
            # on every request.
            while self._seen:
                oldest, expires = next(iter(self._seen.items()))
                if expires >= now:
                    break
                del self._seen[oldest]
            if jti in self._seen:
                return False
            self._seen[jti] = until
            return True


class Verifier:
    def __init__(self, audience: str, origin: str, jwks_url: Optional[str] = None, jwks: Optional[dict] = None,
                 replay=None, clock: Callable[[], float] = time.time):
        # A fetched set is cached as long as the gateway says (5 minutes) and refetched on an unknown kid.
        self._client = jwt.PyJWKClient(jwks_url, lifespan=300) if jwks_url else None
        self._keys = None if jwks_url else {k.key_id: k for k in jwt.PyJWKSet.from_dict(jwks).keys}
        self.audience, self.origin = audience, origin
        self._replay = replay or MemoryReplayGuard()
        self._clock = clock

    def _key(self, kid):
        if self._client:
            try:
                return self._client.get_signing_key(kid).key
            except jwt.PyJWKClientError:
                raise Refused("unknown key") from None
        if kid not in self._keys:
            raise Refused("unknown key")
        return self._keys[kid].key

    def verify(self, method: str, target: str, assertion: Optional[str], body: bytes) -> Identity:
        """`target`: the raw path and query of the request line (Starlette: scope["raw_path"] and scope["query_string"])."""
        if not assertion:
            raise Refused("no assertion")
        try:
            header = jwt.get_unverified_header(assertion)
            if header.get("typ") != "zgate-assertion+jwt":
                raise Refused("not a zgate assertion")
            claims = jwt.decode(assertion, self._key(header.get("kid")), algorithms=["EdDSA"], audience=self.audience,
                                issuer="zgate", leeway=SKEW_SECONDS, options={"require": CLAIMS})
        except jwt.InvalidAudienceError:
            raise Refused("minted for another audience") from None
        except jwt.ExpiredSignatureError:
            raise Refused("expired") from None
        except jwt.InvalidSignatureError:
            raise Refused("bad signature") from None
        except jwt.InvalidTokenError as err:
            raise Refused(f"invalid assertion: {type(err).__name__}") from None
        if claims["exp"] - claims["iat"] > LIFETIME_SECONDS:
            raise Refused("lives too long")
        path, _, query = target.partition("?")
        if claims["htm"] != method.upper():
            raise Refused("method does not match")
        if claims["htu"] != self.origin + path:
            raise Refused("URL does not match")
        if claims["query_digest"] != digest(query.encode()):
            raise Refused("query does not match")
        if claims["content_digest"] != digest(body):
            raise Refused("body does not match")
        if not self._replay.first_use(claims["jti"], claims["exp"] + SKEW_SECONDS, self._clock()):
            raise Refused("replayed")
        return Identity(request_id=claims["request_id"], jti=claims["jti"], subject=claims.get("sub"),
                        account=claims.get("account"), user=claims.get("user"), key_id=claims.get("key_id"))
