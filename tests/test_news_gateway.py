"""The gateway's news: the store behind the ``news`` stream and GET /v1/news, and the
protocol rules of a news subscription."""

from __future__ import annotations

import dataclasses

import orjson
import pytest

from fiml.export import row
from gateway.news_store import NEWS_KEPT, NEWS_SNAPSHOT, NewsStore
from gateway.protocol import StreamType, parse_client_message
from gateway.replay_sources import keyed_news_item
from gateway.session_state import SessionState
from gateway.subscription import Subscription
from runtime.catalog import Catalog, ExchangeMarkets
from runtime.replay_request import Keyed
from runtime.settings import Settings
from tests.support_news import raw, utc_us

T0 = utc_us(2025, 11, 20, 12)
MINUTE = 60_000_000


def story(n: int, symbols: tuple[str, ...] = ("AAPL",), **changes: object):
    item = raw(
        "fmp", f"Story number {n} about things", f"https://a.example/{n}", T0 + n * MINUTE, symbols
    )
    return dataclasses.replace(item, **changes) if changes else item


def subscribe(*symbols: str) -> Subscription:
    return Subscription(StreamType.NEWS, list(symbols), 1000)


def ids(items: list[str]) -> list[str]:
    return [orjson.loads(text)["id"] for text in items]


def test_a_subscription_gets_the_last_stories_then_each_new_or_updated_one() -> None:
    store = NewsStore()
    stories = [story(n) for n in range(NEWS_SNAPSHOT + 5)]
    for item in reversed(stories):  # arrival order is not publish order
        store.update("AAPL", item)
    store.update("MSFT", story(99, ("MSFT",)))
    sub = subscribe("AAPL")
    assert ids(store.collect(sub)) == [s.id for s in stories[-NEWS_SNAPSHOT:]]
    assert store.collect(sub) == []
    store.update("MSFT", story(100, ("MSFT",)))
    assert store.collect(sub) == []  # another symbol's story
    updated = dataclasses.replace(stories[0], providers=["fmp", "yfinance"])
    fresh = story(200)
    store.update("AAPL", updated)
    store.update("AAPL", fresh)
    got = [orjson.loads(text) for text in store.collect(sub)]
    assert [g["id"] for g in got] == [updated.id, fresh.id]
    assert got[0]["providers"] == ["fmp", "yfinance"] and got[0]["symbol"] == "AAPL"
    assert subscribe("TSLA").cursors == {} and store.collect(subscribe("TSLA")) == []


def test_a_merged_story_removes_the_ones_it_replaces() -> None:
    store = NewsStore()
    first, second = story(1), story(2)
    store.update("AAPL", first)
    store.update("AAPL", second)
    merged = dataclasses.replace(second, replaces=[first.id])
    store.update("AAPL", merged)
    entries = [orjson.loads(text) for text in store.collect(subscribe("AAPL"))]
    assert [e["id"] for e in entries] == [second.id]
    assert entries[0]["replaces"] == [first.id]


def test_memory_is_bounded_per_symbol_keeping_the_latest_published() -> None:
    store = NewsStore()
    for n in range(NEWS_KEPT + 10):
        store.update("AAPL", story(n))
    kept = store.symbols["AAPL"].stories
    assert len(kept) == NEWS_KEPT
    assert story(9).id not in kept and story(10).id in kept


def test_pages_cover_every_story_in_range_once_in_publish_order() -> None:
    store = NewsStore()
    for n in range(10):
        store.update("AAPL", story(n))
        store.update("MSFT", story(100 + n, ("MSFT",), published_us=T0 + n * MINUTE))
    seen, cursor, pages = [], None, 0
    while True:
        items, cursor = store.page(["AAPL", "MSFT"], T0 + 2 * MINUTE, T0 + 7 * MINUTE, 4, cursor)
        seen.extend(items)
        pages += 1
        if cursor is None:
            break
    assert pages == 3 and len(seen) == 12
    assert [(i["timestamp"], i["symbol"]) for i in seen] == sorted(
        (i["timestamp"], i["symbol"]) for i in seen
    )
    assert len({(i["symbol"], i["id"]) for i in seen}) == 12
    with pytest.raises(ValueError, match="cursor"):
        store.page(["AAPL"], T0, T0 + MINUTE, 4, "not-a-cursor")


def test_a_news_subscription_with_a_start_is_a_replay() -> None:
    state = SessionState(Catalog.from_settings(Settings(), ExchangeMarkets()), 0, 0)
    request = {"type": "subscribe", "stream_type": "news", "symbols": ["AAPL"]}
    live = state.subscribe(parse_client_message(orjson.dumps(request)))
    assert (live.stream_type, live.replay) == (StreamType.NEWS, False)
    replay = {**request, "start": "2025-11-20T00:00:00Z", "end": "2025-11-21T00:00:00Z"}
    assert state.subscribe(parse_client_message(orjson.dumps(replay))).replay is True


def test_a_replayed_story_keeps_its_key_symbol_in_items_and_exports() -> None:
    item = story(1, ("AAPL", "MSFT"))
    keyed = Keyed("MSFT", item)
    assert (keyed.symbol, keyed.published_us, keyed.id) == ("MSFT", item.published_us, item.id)
    assert keyed_news_item(keyed)["symbol"] == "MSFT"
    exported = row(keyed)
    assert list(exported)[:3] == ["symbol", "id", "headline"]
    assert exported["symbol"] == "MSFT" and exported["symbols"] == ["AAPL", "MSFT"]
