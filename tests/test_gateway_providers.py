"""Provider health at the gateway: the status store, GET /v1/providers on the real broker,
the provider notices a client gets, and the quote items' providers and scores."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools

import httpx
from hypothesis import given
from hypothesis import strategies as st

from gateway.items import quote_item
from gateway.providers import ProviderStatuses, notice_message, provider_notices
from schemas import ProviderStatus
from tests.factories import BASE_US, quote, status
from tests.support_kafka import produce

STATES = ("UP", "DEGRADED", "DOWN")


def status_at(provider: str, ts: int, state: str, **fields) -> ProviderStatus:
    """A status ``ts`` µs after ``BASE_US``."""
    return status(provider, ts, state, base=BASE_US, **fields)


def test_the_store_keeps_the_newest_status_and_counts_only_state_changes():
    store = ProviderStatuses()
    store.update(status_at("synthetic:alpha", 10, "UP", latency_ms=15.0))
    assert store.version == 1
    store.update(status_at("synthetic:alpha", 20, "UP", latency_ms=16.0))
    assert store.version == 1, "a periodic report of the same state is no change"
    store.update(status_at("synthetic:alpha", 30, "DOWN", error_kind="outage"))
    store.update(status_at("synthetic:alpha", 25, "UP"))  # older than the one it has
    assert store.version == 2 and store.state("synthetic:alpha") == "DOWN"
    assert store.state("ccxt:kraken") == "UP", "a provider that never reported counts as UP"
    store.update(status_at("ccxt:kraken", 5, "DEGRADED", error_kind="rate_limited"))
    assert [item["provider"] for item in store.items()] == ["ccxt:kraken", "synthetic:alpha"]
    assert store.items()[1] == {
        "provider": "synthetic:alpha",
        "status": "DOWN",
        "latency_ms": None,
        "error_kind": "outage",
        "message": None,
        "timestamp": "2025-11-24T16:00:00.000030Z",
        "feed": "ticks",
    }


def test_a_book_feed_status_is_listed_beside_and_leaves_the_provider_state_alone():
    store = ProviderStatuses()
    store.update(status_at("ccxt:kraken", 10, "UP"))
    store.update(status_at("ccxt:kraken", 20, "DEGRADED", error_kind="book_gap", feed="books"))
    store.update(status_at("ccxt:kraken", 15, "UP", feed="books"))  # older: not kept
    assert (store.state("ccxt:kraken"), store.version) == ("UP", 1)
    assert [(i["feed"], i["status"], i["error_kind"]) for i in store.items()] == [
        ("ticks", "UP", None),
        ("books", "DEGRADED", "book_gap"),
    ]


def test_a_client_hears_of_a_provider_going_down_and_coming_back_once_each():
    states = {"synthetic:alpha": "UP", "synthetic:beta": "UP"}
    serving = {"AAPL": ["synthetic:alpha", "synthetic:beta"], "MSFT": ["synthetic:beta"]}
    told: dict[tuple[str, str], str] = {}

    def notices() -> list[tuple[str, str, str]]:
        return provider_notices(["AAPL", "MSFT"], lambda s: serving.get(s, []), states.get, told)

    assert notices() == []
    states["synthetic:alpha"] = "DOWN"
    assert notices() == [("AAPL", "synthetic:alpha", "DOWN")]
    serving["AAPL"] = ["synthetic:beta"]  # then its quotes no longer list it
    assert notices() == []
    states["synthetic:alpha"] = "UP"
    assert notices() == [("AAPL", "synthetic:alpha", "UP")]
    assert told == {}
    states["synthetic:beta"] = "DEGRADED"
    assert notices() == [
        ("AAPL", "synthetic:beta", "DEGRADED"),
        ("MSFT", "synthetic:beta", "DEGRADED"),
    ]
    assert provider_notices(["MSFT"], serving.get, states.get, told) == []
    assert told == {("MSFT", "synthetic:beta"): "DEGRADED"}, "unwatched symbols are forgotten"


def test_notice_messages_name_the_provider_and_the_reason():
    statuses = {"synthetic:alpha": status_at("synthetic:alpha", 1, "DOWN", error_kind="outage")}
    down = notice_message(("AAPL", "synthetic:alpha", "DOWN"), statuses)
    assert down == {
        "type": "status",
        "symbol": "AAPL",
        "status": "provider_down",
        "provider": "synthetic:alpha",
        "message": "provider synthetic:alpha is DOWN (outage); AAPL goes on from the others",
    }
    up = notice_message(("AAPL", "synthetic:alpha", "UP"), {})
    assert (up["status"], up["message"]) == ("provider_up", "provider synthetic:alpha is UP again")


@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "c"]), st.sampled_from(STATES), st.booleans()),
        max_size=40,
    )
)
def test_notices_alternate_and_leave_the_client_knowing_every_state(steps):
    """Whatever the order of state changes and checks, a client is never told the same state
    twice in a row, hears first of a problem (never of UP), and after each check knows the
    state of every provider serving its symbols."""
    providers = ("a", "b", "c")
    serving = {"X": ["a", "b"], "Y": ["b", "c"]}
    states = dict.fromkeys(providers, "UP")
    told: dict[tuple[str, str], str] = {}
    heard: dict[tuple[str, str], list[str]] = {}
    for provider, state, check in steps:
        states[provider] = state
        if not check:
            continue
        for symbol, name, now in provider_notices(serving, serving.get, states.get, told):
            heard.setdefault((symbol, name), []).append(now)
        for symbol, names in serving.items():
            for name in names:
                assert told.get((symbol, name), "UP") == states[name]
    for history in heard.values():
        assert history[0] != "UP"
        assert all(a != b for a, b in itertools.pairwise(history))


def test_a_quote_item_lists_the_fresh_providers_and_their_scores():
    scored = dataclasses.replace(
        quote("AAPL", 101.0, 1),
        providers=["synthetic:alpha", "synthetic:beta"],
        scores={"synthetic:alpha": 0.91, "synthetic:beta": 0.7},
    )
    item = quote_item(scored)
    assert item["providers"] == ["synthetic:alpha", "synthetic:beta"]
    assert item["scores"] == {"synthetic:alpha": 0.91, "synthetic:beta": 0.7}


async def test_the_gateway_serves_the_latest_status_of_each_provider(gateway):
    settings, port, _ = gateway
    await produce(
        settings,
        "provider.status",
        [
            status_at("synthetic:alpha", 1, "UP", latency_ms=15.0),
            status_at("synthetic:beta", 2, "UP", latency_ms=60.0),
            status_at(
                "synthetic:alpha", 3, "DOWN", error_kind="outage", message="simulated outage"
            ),
            status_at("synthetic:beta", 4, "DEGRADED", error_kind="book_gap", feed="books"),
        ],
    )
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        async with asyncio.timeout(30):
            while True:
                answer = (await http.get("/v1/providers")).json()
                if len(answer) == 3 and answer[0]["status"] == "DOWN":
                    break
                await asyncio.sleep(0.2)
        document = (await http.get("/openapi.json")).json()
    alpha, beta, beta_books = answer
    assert alpha == {
        "provider": "synthetic:alpha",
        "status": "DOWN",
        "latency_ms": None,
        "error_kind": "outage",
        "message": "simulated outage",
        "timestamp": "2025-11-24T16:00:00.000003Z",
        "feed": "ticks",
    }
    assert (beta["provider"], beta["status"], beta["latency_ms"]) == ("synthetic:beta", "UP", 60.0)
    assert (beta_books["provider"], beta_books["status"], beta_books["feed"]) == (
        "synthetic:beta",
        "DEGRADED",
        "books",
    )
    assert "/v1/providers" in document["paths"]
