"""The webhook signature (pure): HMAC-SHA256 over `<timestamp>.<body>` with the subscription's
secret, and the secret itself, derived from a per-subscription salt and the server's key.

Headers sent: `X-Portal-Timestamp: <unix seconds>` and
`X-Portal-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>`. A receiver
recomputes the HMAC over the bytes it received, compares in constant time and refuses old
timestamps (replays).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

SECRET_PREFIX = "whsec_"  # noqa: S105 - a public prefix, not a secret
SIGNATURE_HEADER = "X-Portal-Signature"
TIMESTAMP_HEADER = "X-Portal-Timestamp"


def subscription_secret(*, key: bytes, salt: str) -> str:
    """The secret of the subscription with `salt` under the server's webhook `key`."""
    digest = hmac.new(key, f"webhook-secret:{salt}".encode(), hashlib.sha256).digest()
    return SECRET_PREFIX + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def signature(*, secret: str, timestamp: int, body: bytes) -> str:
    """`sha256=<hex>` of the HMAC-SHA256 of `<timestamp>.<body>` keyed with `secret`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def signature_valid(*, secret: str, timestamp: int, body: bytes, header: str) -> bool:
    """Whether `header` is the signature of `body` at `timestamp` (constant-time compare)."""
    return hmac.compare_digest(signature(secret=secret, timestamp=timestamp, body=body), header)
