"""The alert messages of the client protocol and whose rules a caller's are (no broker)."""

from __future__ import annotations

import json

import pytest
from starlette.requests import Request

from gateway.alert_protocol import AlertCreate, AlertDelete, AlertsSubscribe, AlertsUnsubscribe
from gateway.protocol import ErrorCode, ProtocolError, parse_client_message
from gateway.security import caller_owner
from runtime.settings import Settings


def parsed(message: dict) -> object:
    return parse_client_message(json.dumps(message))


def test_alert_messages_parse_to_their_models():
    assert isinstance(parsed({"type": "subscribe", "stream_type": "alerts"}), AlertsSubscribe)
    assert isinstance(parsed({"type": "unsubscribe", "stream_type": "alerts"}), AlertsUnsubscribe)
    create = parsed({"type": "alert_create", "rule": {"kind": "stale"}, "request_id": "x"})
    assert isinstance(create, AlertCreate) and create.rule == {"kind": "stale"}
    delete = parsed({"type": "alert_delete", "rule_id": "r_1"})
    assert isinstance(delete, AlertDelete) and delete.request_id is None


@pytest.mark.parametrize(
    "message",
    [
        {"type": "subscribe", "stream_type": "alerts", "symbols": ["AAPL"]},
        {"type": "alert_create", "rule": "price_above"},
        {"type": "alert_create"},
        {"type": "alert_delete", "rule_id": ""},
        {"type": "alert_delete", "rule_id": "r" * 65},
        {"type": "alert_delete", "rule_id": "r_1", "request_id": "q" * 65},
        {"type": "alert_delete", "rule_id": "r_1", "owner": "someone else"},
    ],
)
def test_bad_alert_messages_are_alert_errors(message):
    with pytest.raises(ProtocolError) as caught:
        parsed(message)
    assert caught.value.code == ErrorCode.ALERT_ERROR


def test_other_stream_types_are_unchanged():
    with pytest.raises(ProtocolError) as caught:
        parsed({"type": "subscribe", "stream_type": "price"})
    assert caught.value.code == ErrorCode.SUBSCRIPTION_ERROR


def request_with(key: str | None) -> Request:
    headers = [] if key is None else [(b"x-api-key", key.encode())]
    return Request({"type": "http", "headers": headers, "query_string": b""})


def test_the_owner_is_the_keys_identity_and_anonymous_without_keys():
    keyed = Settings(api_keys=("secret-one", "secret-two"))
    one, two = (
        caller_owner(keyed, request_with("secret-one")),
        caller_owner(keyed, request_with("secret-two")),
    )
    assert one != two and one.startswith("k_") and "secret" not in one
    assert caller_owner(Settings(), request_with("secret-one")) == "anonymous"
    assert caller_owner(Settings(), request_with(None)) == "anonymous"
