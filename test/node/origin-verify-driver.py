"""Feeds requests an origin received from zgate to examples/origin-verify/zgate_verify.py.

stdin: {"verifiers": {"<name>": {"audience", "origin", "jwks_url"}}, "checks": [{"verifier": "<name>",
"method", "target", "assertion", "body": "<base64>", "now": <unix s, optional>}]}.
Each named verifier keeps its own jti memory and key cache across its checks, as one origin would.
stdout: one {"ok": true, "identity": {...}} or {"ok": false, "reason": "..."} per check.
"""

import base64
import dataclasses
import datetime
import json
import os
import sys
import time

import jwt.api_jwt

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "examples", "origin-verify"))
from zgate_verify import Refused, Verifier  # noqa: E402

clock = {"now": time.time()}


class _Clock(datetime.datetime):
    """PyJWT reads the time for exp/iat from datetime.now: a check's `now` moves it."""

    @classmethod
    def now(cls, tz=None):
        return datetime.datetime.fromtimestamp(clock["now"], tz)


jwt.api_jwt.datetime = _Clock

cases = json.load(sys.stdin)
verifiers = {name: Verifier(clock=lambda: clock["now"], **options) for name, options in cases["verifiers"].items()}
results = []
for check in cases["checks"]:
    clock["now"] = check.get("now", time.time())
    try:
        identity = verifiers[check["verifier"]].verify(
            check["method"], check["target"], check["assertion"], base64.b64decode(check["body"])
        )
        results.append({"ok": True, "identity": dataclasses.asdict(identity)})
    except Refused as refused:
        results.append({"ok": False, "reason": refused.reason})
json.dump(results, sys.stdout)
