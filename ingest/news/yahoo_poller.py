"""Yahoo Finance news through yfinance's own request and parsing, as the provider ``yfinance``.

Each request calls ``Ticker(t).get_news()`` on a NEW ``Ticker``: yfinance keeps the first
answer on the ``Ticker`` (``if self._news: return self._news``), so a reused one would
never see a new story. yfinance's HTTP is blocking, so the call runs on the poller's own
worker thread and is given up on after the timeout; yfinance is told to raise its errors
(``hide_exceptions = False``), so each becomes a status.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import yfinance as yf
from curl_cffi import requests as curl_requests

from ingest.news.normalize import Parsed, SymbolMap
from ingest.news.planner import Budget, NewsRequest
from ingest.news.poller import NewsPoller
from ingest.news.yahoo import PROVIDER, parse_stream
from ingest.providers.failure import Failure
from ingest.providers.yahoo_mapping import classify_yahoo_error

BUDGET = Budget(interval_s=10.0)
COUNT = 10


class YahooNewsPoller(NewsPoller):
    """Polls Yahoo's latest news of one ticker a slot."""

    def __init__(
        self,
        symbols: Iterable[str],
        *,
        timeout_s: float,
        budget: Budget = BUDGET,
        count: int = COUNT,
        http: Any = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(PROVIDER, symbols, budget, rng)
        self.timeout_s = timeout_s
        self.count = count
        self.http = http if http is not None else curl_requests.Session(impersonate="chrome")
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="yfinance-news")
        yf.config.debug.hide_exceptions = False

    def classify(self, error: BaseException) -> Failure:
        """See :func:`~ingest.providers.yahoo_mapping.classify_yahoo_error`."""
        return classify_yahoo_error(error)

    async def close(self) -> None:
        """Let the worker thread go (a call still hanging there is abandoned)."""
        self.executor.shutdown(wait=False, cancel_futures=True)

    def latest_news(self, ticker: str) -> list[Any]:
        """yfinance's news of ``ticker`` (ads dropped), asked for on a new ``Ticker``."""
        news: list[Any] = yf.Ticker(ticker, session=self.http).get_news(
            count=self.count, tab="news"
        )
        return news

    async def fetch(self, request: NewsRequest, symbols: SymbolMap, ts_ingest: int) -> Parsed:
        """The news of each ticker of ``request``, about that ticker's symbols."""
        loop = asyncio.get_running_loop()
        parsed = Parsed()
        for target in request.targets:
            items = await asyncio.wait_for(
                loop.run_in_executor(self.executor, self.latest_news, target.ticker), self.timeout_s
            )
            found = parse_stream(items, target.symbols, ts_ingest)
            parsed.items.extend(found.items)
            parsed.skipped.update(found.skipped)
            parsed.dropped.update(found.dropped)
        return parsed
