"""FMP's and Alpha Vantage's news over httpx, as the providers ``fmp`` and ``alphavantage``.

Both keys have a daily quota that the quote providers of the same name spend too, so the
news budgets here are shares of it: FMP 50 of its free 250 requests a day (five tickers a
request), Alpha Vantage its 25 a day on the symbols clients want only. The key never
appears in a status or a log line; failures are classified like the quote providers'.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

import httpx

from ingest.news import alphavantage, fmp
from ingest.news.normalize import Parsed, SymbolMap
from ingest.news.planner import Budget, NewsRequest
from ingest.news.poller import NewsPoller
from ingest.providers.keyed_http import (
    KeyedClient,
    NoData,
    QuotaExceeded,
    Unauthorized,
    get_json,
    spacing,
)

REFUSALS: dict[str, type[Exception]] = {
    "unauthorized": Unauthorized,
    "rate_limited": QuotaExceeded,
    "missing_market": NoData,
}


class KeyedNewsPoller(NewsPoller, KeyedClient):
    """A news API that needs a key: one GET a slot, ``limit`` stories an answer."""

    provider = ""
    base_url = ""
    budget_default = Budget(interval_s=86_400.0)
    limit_default = 20

    def __init__(
        self,
        api_key: str,
        symbols: Iterable[str],
        *,
        timeout_s: float,
        budget: Budget | None = None,
        limit: int | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(self.provider, symbols, budget or self.budget_default, rng)
        self.api_key = api_key
        self.limit = limit or self.limit_default
        self.client = httpx.AsyncClient(
            base_url=self.base_url, timeout=timeout_s, transport=transport
        )

    async def get(self, path: str, query: dict[str, str]) -> Any:
        """The decoded answer of one request (see :func:`get_json`)."""
        return await get_json(self.client, path, query, self.api_key)


class FmpNewsPoller(KeyedNewsPoller):
    """FMP's stock, press release, crypto and forex news."""

    provider = fmp.PROVIDER
    base_url = "https://financialmodelingprep.com"
    budget_default = Budget(interval_s=spacing(250, 50), max_batch=5)
    limit_default = 20

    async def fetch(self, request: NewsRequest, symbols: SymbolMap, ts_ingest: int) -> Parsed:
        """One request of a feed; an ``Error Message`` answer is a refused key."""
        body = await self.get(*fmp.request(request.feed, request.tickers, self.limit))
        message = fmp.refusal(body)
        if message is not None:
            raise Unauthorized(message)
        return fmp.parse_news(body, request.feed, symbols, ts_ingest)


class AlphaVantageNewsPoller(KeyedNewsPoller):
    """Alpha Vantage's ``NEWS_SENTIMENT``, one ticker a request."""

    provider = alphavantage.PROVIDER
    base_url = "https://www.alphavantage.co"
    budget_default = Budget(interval_s=spacing(5, 25), demand_only=True)
    limit_default = 50

    async def fetch(self, request: NewsRequest, symbols: SymbolMap, ts_ingest: int) -> Parsed:
        """One request; a note or error answer raises the matching refusal."""
        body = await self.get(*alphavantage.request(request.tickers, self.limit))
        refused = alphavantage.refusal(body)
        if refused is not None:
            kind, text = refused
            raise REFUSALS[kind](text)
        return alphavantage.parse_feed(body, request.symbols, symbols, ts_ingest)
