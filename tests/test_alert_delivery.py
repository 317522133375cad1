"""Webhook delivery rules (domain/alerts/delivery.py): signature, retries, rate limit."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.alerts.delivery import (
    RateLimiter,
    RetryPolicy,
    Step,
    next_step,
    rule_secret,
    signature,
    verify,
    webhook_body,
)
from domain.alerts.webhooks import destination_allowed
from schemas.alerts import FiredAlert
from tests.support_alerts import SECOND, T0

ALERT = FiredAlert(
    "0f" * 16,
    "rule-1",
    "anonymous",
    "crosses",
    "BTC/USDT",
    T0,
    {"price": 65001.5, "previous": 64999.0, "level": 65000.0},
    "BTC/USDT crossed 65000.0 up: 64999.0 to 65001.5",
    "fiml.quotes",
    3,
    1234,
    "https://hooks.example.com/fiml",
)
NOW = T0 // SECOND


def hmac_sha256(key: bytes, message: bytes) -> str:
    """RFC 2104 written out on hashlib's SHA-256: an independent check of the signature."""
    key = key.ljust(64, b"\0")
    inner = hashlib.sha256(bytes(k ^ 0x36 for k in key) + message).digest()
    return hashlib.sha256(bytes(k ^ 0x5C for k in key) + inner).hexdigest()


def test_signature_is_hmac_sha256_of_timestamp_dot_body():
    body = webhook_body(ALERT)
    header = signature(b"whsec", body, NOW)
    assert header == f"t={NOW},v1={hmac_sha256(b'whsec', str(NOW).encode() + b'.' + body)}"


@settings(max_examples=200, deadline=None)
@given(
    st.binary(min_size=1, max_size=64),
    st.binary(max_size=300),
    st.integers(0, 2**40),
    st.integers(-300, 300),
)
def test_a_signature_verifies_within_the_tolerance(secret, body, stamp, skew):
    assert verify(secret, body, signature(secret, body, stamp), stamp + skew)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.data())
def test_any_change_of_body_secret_or_time_is_detected(body, data):
    header = signature(b"secret", body, NOW)
    if body:
        index = data.draw(st.integers(0, len(body) - 1))
        flipped = bytearray(body)
        flipped[index] ^= data.draw(st.integers(1, 255))
        assert not verify(b"secret", bytes(flipped), header, NOW)
    assert not verify(b"secret", body + b" ", header, NOW)
    assert not verify(b"other", body, header, NOW)
    assert not verify(b"secret", body, header.replace(f"t={NOW}", f"t={NOW + 1}"), NOW)
    assert not verify(b"secret", body, header, NOW + 301)


def test_a_receiver_accepts_either_of_two_secrets_during_a_rotation():
    body = b"{}"
    new = signature(b"new", body, NOW)
    both = f"{new},v1={signature(b'old', body, NOW).rpartition('v1=')[2]}"
    assert verify(b"old", body, both, NOW) and verify(b"new", body, both, NOW)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120))
def test_malformed_signature_headers_are_refused_not_raised(header):
    assert verify(b"secret", b"{}", header, NOW) is False


def test_the_body_is_canonical_json_of_the_alert():
    body = webhook_body(ALERT)
    document = json.loads(body)
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert body == webhook_body(ALERT) == canonical.encode()
    assert document["alert_id"] == ALERT.alert_id and document["time"].endswith("Z")
    assert document["source"] == {"topic": "fiml.quotes", "partition": 3, "offset": 1234}
    assert "owner" not in document and document["values"]["price"] == 65001.5


def test_each_rule_has_its_own_secret_derived_from_the_servers():
    first = rule_secret(b"server", "rule-1")
    assert first == rule_secret(b"server", "rule-1") and len(first) == 64
    assert first != rule_secret(b"server", "rule-2") != rule_secret(b"other", "rule-2")


def test_the_retry_schedule_grows_fourfold_with_a_fixed_spread_per_alert():
    def schedule(policy, alert_id):
        return [policy.delay(n, alert_id) for n in range(1, policy.attempts)]

    policy = RetryPolicy()
    delays = schedule(policy, ALERT.alert_id)
    assert len(delays) == 5
    for delay, base in zip(delays, [1, 4, 16, 64, 256], strict=True):
        assert base <= delay < base * 1.2
    assert delays == schedule(policy, ALERT.alert_id)
    assert delays != schedule(policy, "another alert")
    exact = RetryPolicy(spread=0.0, attempts=8)
    assert schedule(exact, "x") == [1, 4, 16, 64, 256, 600, 600]


@pytest.mark.parametrize(
    ("status", "action", "reason"),
    [
        (200, "delivered", None),
        (204, "delivered", None),
        (None, "retry", None),
        (408, "retry", None),
        (429, "retry", None),
        (500, "retry", None),
        (503, "retry", None),
        (301, "dead", "rejected"),
        (400, "dead", "rejected"),
        (401, "dead", "rejected"),
        (404, "dead", "rejected"),
        (410, "dead", "rejected"),
    ],
)
def test_what_follows_each_answer(status, action, reason):
    step = next_step(RetryPolicy(), 1, status, "a")
    assert (step.action, step.reason) == (action, reason)
    if action == "retry":
        assert step.delay_s == RetryPolicy().delay(1, "a")


def test_retry_after_lengthens_a_delay_up_to_the_cap():
    policy = RetryPolicy()
    assert next_step(policy, 1, 429, "a", retry_after_s=30) == Step("retry", 30)
    assert next_step(policy, 1, 503, "a", retry_after_s=10**6) == Step("retry", 600)
    assert next_step(policy, 1, 503, "a", retry_after_s=0.1).delay_s == policy.delay(1, "a")


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from([None, 200, 404, 429, 500, 502]), min_size=10, max_size=10),
    st.integers(1, 8),
)
def test_a_delivery_ends_delivered_or_dead_within_the_attempts(answers, attempts):
    policy = RetryPolicy(attempts=attempts)
    for tried, status in enumerate(answers, start=1):
        step = next_step(policy, tried, status, "a")
        if step.action != "retry":
            break
    terminal = next(i for i, s in enumerate(answers) if s in (200, 404) or i >= attempts - 1)
    assert tried == terminal + 1 <= attempts
    if answers[terminal] == 200:
        assert step == Step("delivered")
    else:
        reason = "rejected" if answers[terminal] == 404 else "exhausted"
        assert step == Step("dead", reason=reason)


def test_an_alert_older_than_the_age_limit_expires():
    policy = RetryPolicy(max_age_s=3600)
    assert not policy.expired(ALERT, T0 + 3600 * SECOND)
    assert policy.expired(ALERT, T0 + 3600 * SECOND + 1)


def test_rate_limit_allows_a_burst_then_the_rate():
    limiter = RateLimiter(per_second=2.0, burst=3.0)
    assert [limiter.take("a", T0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a", T0) == 0.5 and limiter.take("b", T0) == 0.0
    assert limiter.take("a", T0 + SECOND // 2) == 0.0
    assert limiter.take("a", T0 + SECOND // 2) == 0.5


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["a", "b"]), st.integers(0, 3 * SECOND)), max_size=60),
    st.sampled_from([0.5, 1.0, 4.0]),
    st.sampled_from([1.0, 3.0]),
)
def test_no_owner_gets_more_than_the_burst_plus_the_rate(steps, rate, burst):
    limiter, pruned, now, granted = (
        RateLimiter(rate, burst),
        RateLimiter(rate, burst),
        T0,
        {"a": [], "b": []},
    )
    for owner, step in steps:
        now += step
        wait = limiter.take(owner, now)
        pruned.prune(now)
        assert pruned.take(owner, now) == wait
        if wait == 0:
            granted[owner].append(now)
    for times in granted.values():
        for i, start in enumerate(times):
            for j in range(i, len(times)):
                assert j - i + 1 <= burst + (times[j] - start) / SECOND * rate + 1e-9


@pytest.mark.parametrize(
    ("url", "address", "allowed"),
    [
        ("https://hooks.example.com/x", "93.184.216.34", True),
        ("https://hooks.example.com/x", "2606:2800:220:1::1", True),
        ("https://hooks.example.com/x", "10.1.2.3", False),
        ("https://hooks.example.com/x", "127.0.0.1", False),
        ("https://hooks.example.com/x", "169.254.169.254", False),
        ("https://hooks.example.com/x", "::1", False),
        ("https://hooks.example.com/x", "not an address", False),
        ("http://127.0.0.1:9000/x", "127.0.0.1", True),
        ("http://127.0.0.1:9000/x", "93.184.216.34", False),
    ],
)
def test_a_webhook_connects_only_to_public_addresses_or_local_http(url, address, allowed):
    assert destination_allowed(url, address) is allowed
