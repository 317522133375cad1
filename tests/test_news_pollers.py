"""News pollers on recorded answers: items and UP statuses, one request a slot, no item
written twice, demand-only budgets, and failures as statuses without the key."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from yfinance.data import YfData

from ingest.news.keyed_pollers import AlphaVantageNewsPoller, FmpNewsPoller
from ingest.news.planner import Budget
from ingest.news.yahoo_poller import YahooNewsPoller
from schemas import ProviderStatus
from schemas.news import NewsItem
from tests.ccxt_http import fixture
from tests.support_news import recorded
from tests.support_providers import Records, run_provider_until

KEY = "NEWSKEY123"
FAST = Budget(interval_s=0.05, max_batch=5)


def transport(
    answer: Callable[[httpx.Request], httpx.Response], seen: list[httpx.Request]
) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer(request)

    return httpx.MockTransport(handler)


def answering(body: Any, status: int = 200) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(status, json=body)


def then_busy(body: Any, times: int) -> Callable[[httpx.Request], httpx.Response]:
    """``body`` the first ``times`` requests, then HTTP 503 (which ends the test's run)."""
    answered: list[int] = []

    def answer(request: httpx.Request) -> httpx.Response:
        answered.append(1)
        return httpx.Response(200 if len(answered) <= times else 503, json=body)

    return answer


def items(records: Records) -> list[NewsItem]:
    return [record for record in records if isinstance(record, NewsItem)]


def failed(records: Records) -> bool:
    return any(isinstance(r, ProviderStatus) and r.state != "UP" for r in records)


async def test_fmp_polls_each_slot_and_writes_an_item_once() -> None:
    seen: list[httpx.Request] = []
    body = recorded("fmp_stable_news_stock_AAPL_MSFT.json")
    poller = FmpNewsPoller(
        KEY,
        ["AAPL", "MSFT", "^GSPC"],
        timeout_s=1,
        budget=FAST,
        transport=transport(then_busy(body, 3), seen),
    )
    records = await run_provider_until(poller, failed)
    (item,) = items(records)  # three polls, the same answer: written once
    assert (item.symbols, item.providers, item.publisher) == (["AAPL"], ["fmp"], "Reuters")
    assert [type(r).__name__ for r in records] == ["ProviderStatus", "NewsItem", "ProviderStatus"]
    assert (records[0].state, records[-1].error_kind) == ("UP", "unavailable")
    assert len(seen) == 4
    assert {(r.url.path, r.url.params["symbols"]) for r in seen} <= {
        ("/stable/news/press-releases", "AAPL,MSFT"),
        ("/stable/news/stock", "AAPL,MSFT"),
    }
    assert seen[0].url.params["apikey"] == KEY
    assert poller.skipped == {}


async def test_alpha_vantage_polls_only_what_clients_want() -> None:
    seen: list[httpx.Request] = []
    body = recorded("alphavantage_news_sentiment_20240719.json")
    poller = AlphaVantageNewsPoller(
        KEY, ["MSFT"], timeout_s=1, transport=transport(answering(body), seen)
    )
    poller.set_subscribed(frozenset({"BTC/USDT", "^GSPC"}))
    records = await run_provider_until(poller, lambda records: bool(items(records)))
    assert [dict(r.url.params) for r in seen] == [
        {
            "function": "NEWS_SENTIMENT",
            "tickers": "CRYPTO:BTC",
            "sort": "LATEST",
            "limit": "50",
            "apikey": KEY,
        }
    ]
    written = items(records)
    assert len(written) == 13 and all("BTC/USDT" in item.symbols for item in written)
    assert poller.skipped == {}


@pytest.mark.parametrize(
    ("make", "answer", "kind", "state"),
    [
        (
            AlphaVantageNewsPoller,
            answering(json.loads(fixture("http/alphavantage_daily_limit.json"))),
            "rate_limited",
            "DEGRADED",
        ),
        (
            AlphaVantageNewsPoller,
            answering({"Information": "Invalid API key. Check it."}),
            "unauthorized",
            "DOWN",
        ),
        (AlphaVantageNewsPoller, answering({"items": "0"}), "bad_response", "DEGRADED"),
        (
            FmpNewsPoller,
            answering(json.loads(fixture("http/fmp_invalid_key.json"))),
            "unauthorized",
            "DOWN",
        ),
        (FmpNewsPoller, answering({"message": "Limit Reach"}, 429), "rate_limited", "DEGRADED"),
        (FmpNewsPoller, answering("busy", 503), "unavailable", "DOWN"),
        (
            FmpNewsPoller,
            lambda r: (_ for _ in ()).throw(httpx.ReadTimeout("slow", request=r)),
            "timeout",
            "DOWN",
        ),
    ],
)
async def test_failures_are_statuses_without_the_key(
    make: type, answer: Any, kind: str, state: str
) -> None:
    poller = make(KEY, ["AAPL"], timeout_s=1, transport=transport(answer, []), rng=random.Random(3))
    poller.set_subscribed(frozenset({"AAPL"}))
    records = await run_provider_until(poller, failed)
    status = next(r for r in records if isinstance(r, ProviderStatus) and r.state != "UP")
    assert (status.state, status.error_kind, status.provider) == (state, kind, poller.name)
    assert KEY not in status.message


class YahooAnswers:
    """Yahoo's xhr/ncp answers to yfinance, counted; after ``times`` of them Yahoo is down."""

    def __init__(self, body: Any, times: int) -> None:
        self.body = json.dumps(body)
        self.times = times
        self.posts: list[Any] = []

    def post(self, url: str, body: Any = None, **kwargs: Any) -> YahooAnswers:
        """Stands for ``YfData.post`` (set on the class, it is called without YfData's self)."""
        self.posts.append(body)
        return self

    @property
    def text(self) -> str:
        return self.body if len(self.posts) <= self.times else "<p>Will be right back</p>"

    def json(self) -> Any:
        return json.loads(self.text)


async def test_yfinance_asks_again_each_slot_despite_its_cache(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = YahooAnswers(recorded("yahoo_ncp_AAPL.json"), times=3)
    monkeypatch.setattr(YfData, "post", answers.post)
    poller = YahooNewsPoller(["AAPL"], timeout_s=5, budget=FAST)
    records = await run_provider_until(poller, failed)
    # get_news keeps its first answer on the Ticker: one POST a slot shows a new Ticker each.
    assert [post["serviceConfig"]["s"] for post in answers.posts] == [["AAPL"]] * 4
    written = items(records)
    assert len(written) == 3  # the same three stories each time, written once
    assert all(item.symbols == ["AAPL"] for item in written)
    status = records[-1]
    assert (status.state, status.error_kind) == ("DEGRADED", "bad_response")
    assert "YAHOO! FINANCE IS CURRENTLY DOWN" in status.message
