"""The signature partners verify: ``X-SCRM-Signature: t=<unix>,v1=<hex>``, where ``hex`` is
HMAC-SHA256 of ``"<t>.<body>"`` under the endpoint's secret (the scheme Stripe uses)."""

import hashlib
import hmac
import time

TOLERANCE_SECONDS = 300


def signature_header(*, secret: str, body: bytes, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def signature_verify(*, secret: str, body: bytes, header: str,
                     tolerance: int = TOLERANCE_SECONDS, now: float | None = None) -> bool:
    """What a partner does on receipt: the signature matches and is recent (no replays)."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = signature_header(secret=secret, body=body, timestamp=timestamp).split("v1=")[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))
