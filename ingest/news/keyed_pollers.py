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
from ingest.providers.backoff import Failure
from ingest.providers.keyed_http import (
    NoData,
    QuotaExceeded,
    Unauthorized,
    classify_http_error,
    get_json,
    spacing,
)

FMP_BUDGET = Budget(interval_s=spacing(250, 50), max_batch=5)
ALPHAVANTAGE_BUDGET = Budget(interval_s=spacing(5, 25), demand_only=True)
REFUSALS: dict[str, type[Exception]] = {
    "unauthorized": Unauthorized,
    "rate_limited": QuotaExceeded,
    "missing_market": NoData,
}


class KeyedNewsPoller(NewsPoller):
    """A news API that needs a key: one GET a slot."""

    base_url = ""

    def __init__(
        self,
        name: str,
        api_key: str,
        symbols: Iterable[str],
        budget: Budget,
        *,
        timeout_s: float,
        limit: int,
        transport: httpx.AsyncBaseTransport | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(name, symbols, budget, rng)
        self.api_key = api_key
        self.limit = limit
        self.client = httpx.AsyncClient(
            base_url=self.base_url, timeout=timeout_s, transport=transport
        )

    def classify(self, error: BaseException) -> Failure:
        """See :func:`~ingest.providers.keyed_http.classify_http_error`."""
        return classify_http_error(error)

    def retry_after(self, error: BaseException) -> float | None:
        """The ``Retry-After`` of a 429."""
        return getattr(error, "retry_after", None)

    def describe(self, error: BaseException) -> str:
        """The error text with the API key masked."""
        text = super().describe(error)
        return text.replace(self.api_key, "***") if self.api_key else text

    async def close(self) -> None:
        """Close the HTTP client."""
        await self.client.aclose()

    async def get(self, path: str, query: dict[str, str]) -> Any:
        """The decoded answer of one request (see :func:`get_json`)."""
        return await get_json(self.client, path, query, self.api_key)


class FmpNewsPoller(KeyedNewsPoller):
    """FMP's stock, press release, crypto and forex news."""

    base_url = "https://financialmodelingprep.com"

    def __init__(
        self,
        api_key: str,
        symbols: Iterable[str],
        *,
        timeout_s: float,
        budget: Budget = FMP_BUDGET,
        limit: int = 20,
        transport: httpx.AsyncBaseTransport | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(
            fmp.PROVIDER,
            api_key,
            symbols,
            budget,
            timeout_s=timeout_s,
            limit=limit,
            transport=transport,
            rng=rng,
        )

    async def fetch(self, request: NewsRequest, symbols: SymbolMap, ts_ingest: int) -> Parsed:
        """One request of a feed; an ``Error Message`` answer is a refused key."""
        body = await self.get(*fmp.request(request.feed, request.tickers, self.limit))
        message = fmp.refusal(body)
        if message is not None:
            raise Unauthorized(message)
        return fmp.parse_news(body, request.feed, symbols, ts_ingest)


class AlphaVantageNewsPoller(KeyedNewsPoller):
    """Alpha Vantage's ``NEWS_SENTIMENT``, one ticker a request."""

    base_url = "https://www.alphavantage.co"

    def __init__(
        self,
        api_key: str,
        symbols: Iterable[str],
        *,
        timeout_s: float,
        budget: Budget = ALPHAVANTAGE_BUDGET,
        limit: int = 50,
        transport: httpx.AsyncBaseTransport | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(
            alphavantage.PROVIDER,
            api_key,
            symbols,
            budget,
            timeout_s=timeout_s,
            limit=limit,
            transport=transport,
            rng=rng,
        )

    async def fetch(self, request: NewsRequest, symbols: SymbolMap, ts_ingest: int) -> Parsed:
        """One request; a note or error answer raises the matching refusal."""
        body = await self.get(*alphavantage.request(request.tickers, self.limit))
        refused = alphavantage.refusal(body)
        if refused is not None:
            kind, text = refused
            raise REFUSALS[kind](text)
        return alphavantage.parse_feed(body, request.symbols, symbols, ts_ingest)
