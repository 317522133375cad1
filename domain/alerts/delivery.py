"""Webhook delivery rules, pure (times are passed in): body, signature, retries, rate limit.

A fired alert is POSTed as :func:`webhook_body` with the headers ``X-Fiml-Alert-Id`` (the
alert id: a receiver drops repeats by it) and ``X-Fiml-Signature: t=<unix seconds>,v1=<hex>``,
the hex HMAC-SHA256, under the rule's secret, of ``<t>.`` followed by the body bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field

from schemas.alerts import FiredAlert
from schemas.times import check_micros, micros_to_iso

SIGNATURE_HEADER = "X-Fiml-Signature"
ALERT_ID_HEADER = "X-Fiml-Alert-Id"
SIGNATURE_TOLERANCE_S = 300
_SECRET_DOMAIN = b"fiml-webhook-secret\x00"
_SPREAD_DOMAIN = b"fiml-webhook-retry\x00"


def check_alert(alert: FiredAlert) -> None:
    """Raise ValueError unless ``alert`` can be shown to its owner (its time is a date):
    the check of every reader of ``alerts.fired`` (``runtime/intake.py``)."""
    check_micros(alert.ts_event)


def alert_document(alert: FiredAlert) -> dict[str, object]:
    """A fired alert as its owner sees it: on the WebSocket, in back-tests and webhooks."""
    return {
        "alert_id": alert.alert_id,
        "rule_id": alert.rule_id,
        "kind": alert.kind,
        "subject": alert.subject,
        "time": micros_to_iso(alert.ts_event),
        "values": alert.values,
        "message": alert.message,
        "source": {
            "topic": alert.source_topic,
            "partition": alert.source_partition,
            "offset": alert.source_offset,
        },
    }


def webhook_body(alert: FiredAlert) -> bytes:
    """The JSON body of an alert's POST: compact, keys sorted, UTF-8."""
    document = {"type": "alert", "ts_event": alert.ts_event, **alert_document(alert)}
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def rule_secret(server_secret: bytes, rule_id: str) -> bytes:
    """A rule's signing secret: HMAC-SHA256 of its id under the server's secret (hex, ASCII)."""
    mac = hmac.new(server_secret, _SECRET_DOMAIN + rule_id.encode(), hashlib.sha256)
    return mac.hexdigest().encode()


def signature(secret: bytes, body: bytes, timestamp: int) -> str:
    """The ``X-Fiml-Signature`` value of ``body`` sent at ``timestamp`` (unix seconds)."""
    mac = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(
    secret: bytes, body: bytes, header: str, now: int, tolerance: int = SIGNATURE_TOLERANCE_S
) -> bool:
    """Whether ``header`` signs ``body`` under ``secret`` at most ``tolerance`` s from ``now``.

    Any ``v1`` entry may match (a sender may sign with an old and a new secret at once).
    """
    timestamps = [v for k, v in _pairs(header) if k == "t"]
    if len(timestamps) != 1 or not (timestamps[0].isascii() and timestamps[0].isdigit()):
        return False
    stamp = int(timestamps[0])
    if abs(now - stamp) > tolerance:
        return False
    expected = signature(secret, body, stamp).rpartition("v1=")[2]
    return any(
        hmac.compare_digest(expected.encode(), v.encode()) for k, v in _pairs(header) if k == "v1"
    )


def _pairs(header: str) -> list[tuple[str, str]]:
    return [
        (k.strip(), v.strip()) for k, _, v in (item.partition("=") for item in header.split(","))
    ]


@dataclass(frozen=True, slots=True)
class Step:
    """What to do after a try: ``delivered``, ``retry`` after ``delay_s``, or ``dead``."""

    action: str
    delay_s: float = 0.0
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Tries and their spacing: ``first_delay_s * factor ** (n - 1)`` after try ``n``, capped.

    Each delay is stretched by up to ``spread`` of itself, by an amount that a hash of the
    alert id and the try number fixes: alerts fired together do not retry together, and
    the schedule of an alert is the same every time (no randomness).
    """

    attempts: int = 6
    first_delay_s: float = 1.0
    factor: float = 4.0
    max_delay_s: float = 600.0
    spread: float = 0.2
    timeout_s: float = 10.0
    max_age_s: float = 86_400.0

    def delay(self, attempt: int, alert_id: str) -> float:
        """Seconds to wait after the failed try number ``attempt`` (from 1)."""
        base = min(self.max_delay_s, self.first_delay_s * self.factor ** (attempt - 1))
        digest = hashlib.sha256(_SPREAD_DOMAIN + f"{alert_id}:{attempt}".encode()).digest()
        share = int.from_bytes(digest[:8], "big") / 2**64
        return min(self.max_delay_s, base * (1 + self.spread * share))

    def expired(self, alert: FiredAlert, now_us: int) -> bool:
        """Whether an alert is too old to deliver now: dead-letter it unsent as ``expired``."""
        return now_us - alert.ts_event > self.max_age_s * 1_000_000


def outcome(status: int | None) -> str:
    """``delivered`` (2xx), ``retry`` (no answer, 408, 425, 429, 5xx) or ``rejected`` (else)."""
    if status is None or status in (408, 425, 429) or 500 <= status <= 599:
        return "retry"
    return "delivered" if 200 <= status <= 299 else "rejected"


def next_step(
    policy: RetryPolicy,
    attempt: int,
    status: int | None,
    alert_id: str,
    retry_after_s: float | None = None,
) -> Step:
    """After try ``attempt`` got ``status`` (None: timeout or no connection), what comes next.

    A rejected answer goes to the dead letters at once (``rejected``), a retryable one
    after the last try (``exhausted``). A ``Retry-After`` the receiver sent lengthens the
    delay, up to ``max_delay_s``.
    """
    result = outcome(status)
    if result == "delivered":
        return Step("delivered")
    if result == "rejected":
        return Step("dead", reason="rejected")
    if attempt >= policy.attempts:
        return Step("dead", reason="exhausted")
    delay = policy.delay(attempt, alert_id)
    if retry_after_s is not None and retry_after_s > delay:
        delay = min(retry_after_s, policy.max_delay_s)
    return Step("retry", delay)


@dataclass(slots=True)
class RateLimiter:
    """Token buckets per owner: ``burst`` deliveries at once, ``per_second`` on average."""

    per_second: float = 1.0
    burst: float = 10.0
    buckets: dict[str, tuple[float, int]] = field(default_factory=dict)

    def take(self, owner: str, now_us: int) -> float:
        """Take a token for ``owner`` at ``now_us``: 0.0, or the seconds to wait (none taken)."""
        tokens, updated = self.buckets.get(owner, (self.burst, now_us))
        tokens = min(self.burst, tokens + max(0, now_us - updated) / 1e6 * self.per_second)
        if tokens >= 1:
            self.buckets[owner] = (tokens - 1, now_us)
            return 0.0
        self.buckets[owner] = (tokens, now_us)
        return (1 - tokens) / self.per_second

    def prune(self, now_us: int) -> None:
        """Forget the owners whose bucket is full again (as good as new)."""
        self.buckets = {
            owner: (tokens, updated)
            for owner, (tokens, updated) in self.buckets.items()
            if tokens + (now_us - updated) / 1e6 * self.per_second < self.burst
        }
