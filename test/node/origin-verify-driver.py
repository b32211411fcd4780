"""Feeds requests an origin received from zgate to examples/origin-verify/zgate_verify.py.

stdin: {"verifiers": {"<name>": ["<secret>", ...]}, "checks": [{"verifier": "<name>",
"method", "target", "headers": {...}, "body": "<base64>", "now": <unix s, optional>}]}.
Each named verifier keeps its own nonce memory across its checks, as one origin would.
stdout: one {"ok": true, "identity": {...}} or {"ok": false, "reason": "..."} per check.
"""

import base64
import dataclasses
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "examples", "origin-verify"))
from zgate_verify import Refused, Verifier  # noqa: E402

cases = json.load(sys.stdin)
clock = {"now": time.time()}
verifiers = {name: Verifier(secrets, clock=lambda: clock["now"]) for name, secrets in cases["verifiers"].items()}
results = []
for check in cases["checks"]:
    clock["now"] = check.get("now", time.time())
    try:
        identity = verifiers[check["verifier"]].verify(check["method"], check["target"], check["headers"], base64.b64decode(check["body"]))
        results.append({"ok": True, "identity": dataclasses.asdict(identity)})
    except Refused as refused:
        results.append({"ok": False, "reason": refused.reason})
json.dump(results, sys.stdout)
