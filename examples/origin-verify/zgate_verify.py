"""Verify zgate's signed identity headers at an origin. Python 3.9+, standard library only.

What is signed and why each check exists: docs/origin-signature.md. In short, a request
is trusted only when
  1. its Content-Digest is the SHA-256 of the body received,
  2. X-Zgate-Signature-Kid names one of the accepted secrets and X-Zgate-Signature is the
     HMAC-SHA256 of the signed string under it (compared in constant time),
  3. X-Zgate-Timestamp is at most 5 minutes from this clock,
  4. X-Zgate-Nonce was not accepted in the last 5 minutes.

    verifier = Verifier(["<ORIGIN_SIGNING_SECRET>"])          # new and old while rotating
    identity = verifier.verify(method, raw_path_and_query, headers, body)  # or raises Refused

`raw_path_and_query` is the request target exactly as received (still percent-encoded),
e.g. "/api/v1/users/me?view=full". fastapi_example.py shows it for FastAPI.
"""

import base64
import hashlib
import hmac
import os
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Optional

MAX_AGE_SECONDS = 300

# The headers whose values follow method and path in the signed string, in its order.
_SIGNED_HEADERS = (
    "content-digest",
    "x-zgate-product",
    "x-zgate-account",
    "x-zgate-user",
    "x-zgate-key-id",
    "x-request-id",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-prefix",
)
_SIGNATURE = re.compile(r"v2=([0-9a-f]{64})")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


class Refused(Exception):
    """The request is not zgate's, or not as zgate sent it. `reason` is for logs only."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Identity:
    """What zgate asserts about the caller (empty strings where it asserts nothing)."""

    product: str
    account: str
    user: str
    key_id: str
    request_id: str
    nonce: str
    timestamp: int


def key_id(secret: str) -> str:
    """The id zgate sends in X-Zgate-Signature-Kid for a secret: 16 hex digits of its SHA-256."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()[:16]


def content_digest(body: bytes) -> str:
    """Content-Digest (RFC 9530) of a body: sha-256=:<base64>:."""
    return "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode("ascii") + ":"


class NonceStore:
    """Nonces accepted in the last MAX_AGE_SECONDS, in this process's memory.

    An origin served by several processes or hosts needs one shared store instead, e.g.
    Redis `SET zgate-nonce:<nonce> 1 NX EX 300` (accepted only when the SET succeeded).
    """

    def __init__(self) -> None:
        self._until: "OrderedDict[str, float]" = OrderedDict()
        self._lock = threading.Lock()

    def first_use(self, nonce: str, now: float) -> bool:
        with self._lock:
            while self._until and next(iter(self._until.values())) <= now:
                self._until.popitem(last=False)
            if nonce in self._until:
                return False
            self._until[nonce] = now + MAX_AGE_SECONDS
            return True


class Verifier:
    """Checks requests against a set of secrets: the current one, plus the old one during a rotation."""

    def __init__(self, secrets: Iterable[str], nonces: Optional[NonceStore] = None, clock: Callable[[], float] = time.time):
        self._secrets = {key_id(s): s.encode("utf-8") for s in secrets if s}
        if not self._secrets:
            raise ValueError("no signing secret given")
        self._nonces = nonces or NonceStore()
        self._clock = clock

    def verify(self, method: str, path_and_query: str, headers: Mapping[str, str], body: bytes) -> Identity:
        h = {name.lower(): value for name, value in headers.items()}
        field = lambda name: h.get(name, "")  # noqa: E731 - an absent header signs as empty

        # 1. The body is the one that was signed.
        if not hmac.compare_digest(field("content-digest"), content_digest(body)):
            raise Refused("content digest does not match the body")

        # 2. The signature, by the secret the key id names.
        secret = self._secrets.get(field("x-zgate-signature-kid"))
        if secret is None:
            raise Refused("unknown signing key id")
        signature = _SIGNATURE.fullmatch(field("x-zgate-signature"))
        timestamp = field("x-zgate-timestamp")
        if not signature or not _TIMESTAMP.fullmatch(timestamp):
            raise Refused("malformed signature or timestamp")
        signed = "\n".join(
            ["zgate-v2", str(int(timestamp)), field("x-zgate-nonce"), method.upper(), path_and_query]
            + [field(n) for n in _SIGNED_HEADERS]
        )
        expected = hmac.new(secret, signed.encode("utf-8"), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature.group(1)):
            raise Refused("bad signature")

        # 3. Fresh.
        now = self._clock()
        if abs(now - int(timestamp)) > MAX_AGE_SECONDS:
            raise Refused("timestamp outside the 5 minute window")

        # 4. Not a replay (recorded only once everything else holds).
        nonce = field("x-zgate-nonce")
        if not nonce or not self._nonces.first_use(nonce, now):
            raise Refused("nonce already used")

        return Identity(
            product=field("x-zgate-product"),
            account=field("x-zgate-account"),
            user=field("x-zgate-user"),
            key_id=field("x-zgate-key-id"),
            request_id=field("x-request-id"),
            nonce=nonce,
            timestamp=int(timestamp),
        )


def secrets_from_env(name: str = "ZGATE_ORIGIN_SECRETS") -> list:
    """The accepted secrets from a comma-separated variable: "new,old" during a rotation, "new" after."""
    return [s.strip() for s in os.environ.get(name, "").split(",") if s.strip()]
