"""Yahoo Finance through yfinance, as the provider ``yfinance``.

yfinance is blocking, so every call runs on the provider's own worker thread, never on the
event loop, and is given up on after the timeout. Each poll reads the chart metadata
(``regularMarketPrice`` and its time) of every served ticker; polls are at least
``poll_seconds`` apart. Equities, ETFs, indices (``^GSPC``), futures (``GC=F``) and forex
(``EUR/USD`` as ``EURUSD=X``) are served; crypto pairs are left to the exchanges.
Each provider passes its own curl_cffi session (the kind yfinance would make) with every
call rather than relying on whatever session yfinance last held. yfinance is told to raise
its errors (``config.debug.hide_exceptions = False``) rather than log them and return
nothing, so each becomes a status.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import yfinance as yf
from curl_cffi import requests as curl_requests

from fiml.runtime import now_micros
from ingest.providers import Emit
from ingest.providers.backoff import LONG, Failure
from ingest.providers.base import RetryingProvider, wait
from ingest.providers.yahoo_mapping import (
    chart_to_tick,
    classify_yahoo_error,
    yahoo_symbol,
    yahoo_symbols,
)
from schemas import ProviderStatus


class YahooProvider(RetryingProvider):
    """Polls Yahoo's chart API for the served symbols."""

    def __init__(self, symbols: Iterable[str], *, timeout_s: float, poll_seconds: float,
                 http: Any = None, rng: random.Random | None = None) -> None:
        super().__init__("yfinance", symbols, rng)
        self.timeout_s = timeout_s
        self.poll_seconds = poll_seconds
        self.http = http if http is not None else curl_requests.Session(impersonate="chrome")
        self.seq = 0
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="yfinance")
        yf.config.debug.hide_exceptions = False

    def accepts(self, symbol: str) -> bool:
        """Tickers and fiat pairs; crypto pairs are the exchanges'."""
        return yahoo_symbol(symbol) is not None

    @property
    def served(self) -> dict[str, str]:
        """``{Yahoo ticker: canonical symbol}`` of the symbols served now."""
        return yahoo_symbols(self.symbols)

    def classify(self, error: BaseException) -> Failure:
        """See :func:`classify_yahoo_error`."""
        return classify_yahoo_error(error)

    async def close(self) -> None:
        """Let the worker thread go (a call still hanging there is abandoned)."""
        self.executor.shutdown(wait=False, cancel_futures=True)

    def _chart_meta(self, ticker: str) -> dict[str, Any]:
        quotes = yf.Ticker(ticker, session=self.http)
        quotes.history(period="1d", interval="1m", timeout=self.timeout_s)
        return quotes.get_history_metadata()

    async def _off_loop(self, ticker: str) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        return await asyncio.wait_for(loop.run_in_executor(self.executor, self._chart_meta,
                                                           ticker), self.timeout_s)

    async def session(self, emit: Emit, stop: asyncio.Event) -> None:
        """Poll every served ticker; one Yahoo does not know is reported and skipped for a
        long cooldown, any other failure ends the session."""
        loop = asyncio.get_running_loop()
        skipped: dict[str, float] = {}
        while not stop.is_set():
            started = loop.time()
            ticks, statuses = [], []
            for ticker, canonical in self.served.items():
                if skipped.get(ticker, 0.0) > started:
                    continue
                try:
                    meta = await self._off_loop(ticker)
                except Exception as error:
                    if self.classify(error).kind != "missing_market":
                        raise
                    delay = LONG.delay(0, self.rng)
                    skipped[ticker] = loop.time() + delay
                    statuses.append(ProviderStatus(
                        self.name, now_micros(), "DEGRADED", error_kind="missing_market",
                        message=f"Yahoo has no data for {canonical} ({ticker}); "
                                f"retrying it in {delay:.1f} s"))
                    continue
                tick = chart_to_tick(meta, canonical, self.name, self.seq + 1, now_micros())
                if tick is not None:
                    self.seq += 1
                    ticks.append(tick)
            if ticks:
                latency_ms = (loop.time() - started) * 1000 / len(ticks)
                statuses.extend(self.up_status(latency_ms))
            await emit([*statuses, *ticks])
            await wait(stop, self.poll_seconds)
