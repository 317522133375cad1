"""The gateway's default caps and the rules that apply them, without a broker (the caps on
a real server are in tests/test_gateway_streams.py and tests/test_gateway_replay.py)."""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.admission import Admission, Slots
from gateway.app import create_app
from gateway.limits import new_symbol_limit
from gateway.protocol import ErrorCode, ProtocolError, parse_client_message
from gateway.session_state import SessionState
from runtime.catalog import Catalog
from runtime.settings import Settings

CATALOG = Catalog(frozenset({"synthetic"}), frozenset({"AAPL"}))


def replay_request():
    request = {
        "type": "subscribe",
        "stream_type": "trades",
        "symbols": ["AAPL"],
        "start": "2024-01-01T00:00:00Z",
    }
    return parse_client_message(json.dumps(request))


def test_every_cap_is_on_by_default():
    settings = Settings()
    caps = (
        settings.max_connections,
        settings.max_connections_per_client,
        settings.max_subscriptions_per_connection,
        settings.max_symbols_per_connection,
        settings.max_replays,
        settings.max_history_requests,
        settings.max_replays_per_connection,
        settings.max_new_symbols_per_minute,
    )
    assert all(cap > 0 for cap in caps)


def test_replays_share_the_gateways_slots_across_connections():
    slots = Slots(1)
    first = SessionState(CATALOG, replay_slots=slots)
    second = SessionState(CATALOG, replay_slots=slots)
    first.subscribe(replay_request())
    with pytest.raises(ProtocolError) as refused:
        second.subscribe(replay_request())
    assert refused.value.code == ErrorCode.RATE_LIMITED
    assert not second.subscriptions  # nothing was added
    slots.give()  # the first replay ended
    assert second.subscribe(replay_request()).replay


@given(
    st.lists(st.sampled_from(["a", "b", "c"]), max_size=60), st.integers(0, 5), st.integers(0, 3)
)
def test_connections_counted_never_pass_the_caps(events, total, per_client):
    """A model: opens ("a", "b", "c" are addresses) and closes of what was admitted."""
    admission = Admission(total, per_client, Slots(0), Slots(0))
    open_ = []
    for n, address in enumerate(events):
        if n % 3 == 2 and open_:
            admission.leave(open_.pop(0))
            continue
        if admission.refuse_connection(address) is None:
            open_.append(address)
        assert not total or len(open_) <= total
        assert not per_client or max(open_.count(a) for a in "abc") <= per_client
        assert sum(admission.clients.values()) == len(open_)


async def test_history_requests_beyond_the_limit_get_429():
    # In-process, without the app's lifespan: the refusal comes before any read.
    app = create_app(Settings(kafka_bootstrap="127.0.0.1:9", max_history_requests=2))
    history = app.state.admission.history
    assert history.take() and history.take()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        answer = await client.get("/v1/quotes/AAPL", params={"start": "2024-01-01T00:00:00Z"})
    assert answer.status_code == 429 and answer.headers["retry-after"] == "1"
    assert "2 history requests already run" in answer.json()["detail"]
    assert history.taken == 2  # a refused request holds no slot


def price_request(symbols):
    request = {"type": "subscribe", "stream_type": "price", "symbols": symbols}
    return parse_client_message(json.dumps(request))


@given(st.lists(st.tuples(st.integers(1, 5), st.floats(0, 30)), max_size=30))
def test_new_symbols_never_pass_their_pace(requests):
    """A model: subscriptions of fresh symbols at increasing times; what is accepted never
    passes 10 in any minute, a refusal adds nothing, and a request that fits is taken."""
    state = SessionState(
        Catalog(frozenset({"synthetic"}), frozenset(), any_symbol=True),
        new_symbols=new_symbol_limit(10),
    )
    now, serial, accepted = 0.0, 0, []
    for count, wait in requests:
        now += wait
        symbols = [f"S{serial + n}" for n in range(count)]
        serial += count
        held = len(state.subscriptions)
        recent = sum(n for at, n in accepted if at > now - 60)
        try:
            state.subscribe(price_request(symbols), now)
            accepted.append((now, count))
            assert recent + count <= 10
        except ProtocolError as refused:
            assert refused.code == ErrorCode.RATE_LIMITED
            assert len(state.subscriptions) == held and recent + count > 10
