"""One CCXT exchange as a provider named ``ccxt:<exchange id>``.

It loads the exchange's markets, serves the requested crypto pairs the venue lists (a
demanded pair only once the loaded markets show it listed, spot and active), and
streams them with ccxt.pro's ``watch_tickers``/``watch_trades_for_symbols`` where the
exchange has them, else polls ``fetch_tickers``/``fetch_trades`` no faster than the
exchange's ``rateLimit`` (ccxt's own throttler spaces the calls too). A failure is
classified (:func:`classify_ccxt_error`), reported as a ProviderStatus and retried after
its backoff. A REST call that gets no answer within the call timeout counts as a timeout;
so does a stream that delivers neither a ticker nor a trade for the stall time, after which
its WebSocket connections are closed so the retry connects afresh. With ``book_depth``,
a streamed exchange's order books go out too, as book events (``ingest/books/stream.py``).
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Awaitable, Iterable, Mapping
from typing import Any

import ccxt
import ccxt.async_support
import ccxt.pro

from ingest.books.stream import book_tap, fetch_books, watch_books
from ingest.providers import Batch, Emit
from ingest.providers.admission import Admission, Verdict
from ingest.providers.base import RetryingProvider, wait
from ingest.providers.ccxt_mapping import (
    classify_ccxt_error,
    market_verdict,
    ticker_to_tick,
    trade_to_tick,
    venue_symbols,
)
from ingest.providers.failure import Failure
from runtime.backoff import parse_retry_after
from runtime.catalog import is_fiat_pair
from runtime.clock import now_micros
from schemas import ProviderStatus, RawTick

SEEN_TRADES = 1000


class CcxtProvider(RetryingProvider):
    """Reports one exchange's tickers and trades for a set of canonical crypto pairs."""

    def __init__(
        self,
        exchange: Any,
        symbols: Iterable[str],
        *,
        timeout_s: float,
        poll_seconds: float,
        stall_s: float | None = None,
        streaming: bool | None = None,
        rng: random.Random | None = None,
        book_depth: int | None = None,
        admission: Admission | None = None,
    ) -> None:
        super().__init__(f"ccxt:{exchange.id}", symbols, rng, admission)
        self.exchange = exchange
        self.reported_missing: frozenset[str] = frozenset()
        self.timeout_s = timeout_s
        self.stall_s = timeout_s if stall_s is None else stall_s
        self.poll_seconds = max(poll_seconds, exchange.rateLimit / 1000)
        has = exchange.has
        self.streaming = (
            bool(has.get("watchTickers")) and bool(has.get("watchTradesForSymbols"))
            if streaming is None
            else streaming
        )
        self.seq = 0
        self.seen_trades: dict[str, deque[str]] = {}
        self.books = book_depth is not None
        self.tap = book_tap(exchange, book_depth) if book_depth and self.streaming else None

    def accepts(self, symbol: str) -> bool:
        """Crypto pairs: ``BASE/QUOTE`` other than fiat currency pairs."""
        return "/" in symbol and not is_fiat_pair(symbol)

    async def check(self, symbol: str) -> tuple[Verdict, Batch]:
        """The pair's market among the exchange's loaded markets (loaded once, then no
        request): see :func:`market_verdict`."""
        markets = await self._call(self.exchange.load_markets())
        return market_verdict(markets.get(symbol)), []

    def classify(self, error: BaseException) -> Failure:
        """See :func:`classify_ccxt_error`."""
        return classify_ccxt_error(error)

    def retry_after(self, error: BaseException) -> float | None:
        """The ``Retry-After`` header of the response that carried the rate limit."""
        headers = getattr(self.exchange, "last_response_headers", None) or {}
        return parse_retry_after(
            next((value for key, value in headers.items() if key.lower() == "retry-after"), None)
        )

    async def close(self) -> None:
        """Close ccxt's HTTP session and WebSocket clients."""
        await self.exchange.close()

    async def session(self, emit: Emit, stop: asyncio.Event) -> None:
        """Load markets, then stream or poll the served symbols."""
        self.symbols_changed.clear()
        markets = await self._call(self.exchange.load_markets())
        if self.streaming:
            await self._stream(await self._served(markets, emit), emit, stop)
        else:
            await self._poll(markets, emit, stop)

    async def _served(self, markets: Mapping[str, Any], emit: Emit) -> dict[str, str]:
        served, missing = venue_symbols(markets, self.symbols)
        if not served:
            raise ccxt.BadSymbol(f"{self.exchange.id} lists none of {', '.join(self.symbols)}")
        if frozenset(missing) != self.reported_missing:
            self.reported_missing = frozenset(missing)
            if missing:
                await emit(
                    [
                        ProviderStatus(
                            self.name,
                            now_micros(),
                            "DEGRADED",
                            error_kind="missing_market",
                            message=f"no spot market for {', '.join(missing)}",
                        )
                    ]
                )
        return served

    async def _poll(self, markets: Mapping[str, Any], emit: Emit, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            served = await self._served(markets, emit)
            venue = list(served)
            started = loop.time()
            if self.exchange.has.get("fetchTickers"):
                tickers = await self._call(self.exchange.fetch_tickers(venue))
            else:
                tickers = {
                    symbol: await self._call(self.exchange.fetch_ticker(symbol)) for symbol in venue
                }
            trades = (
                {
                    symbol: await self._call(self.exchange.fetch_trades(symbol, limit=100))
                    for symbol in venue
                }
                if self.exchange.has.get("fetchTrades")
                else {}
            )
            books = await fetch_books(self.exchange, served, self._call) if self.books else []
            latency_ms = (loop.time() - started) * 1000
            ts_ingest = now_micros()
            ticks = self._ticker_ticks(tickers, served, ts_ingest)
            for symbol, venue_trades in trades.items():
                ticks.extend(self._trade_ticks(venue_trades, served[symbol], ts_ingest))
            await emit([*self.up_status(latency_ms), *ticks, *books])
            await wait(stop, self.poll_seconds)

    async def _stream(self, served: Mapping[str, str], emit: Emit, stop: asyncio.Event) -> None:
        venue = list(served)
        loop = asyncio.get_running_loop()
        last_update = loop.time()

        async def tickers() -> None:
            nonlocal last_update
            while True:
                update = await self.exchange.watch_tickers(venue)
                last_update = loop.time()
                await emit(
                    [*self.up_status(None), *self._ticker_ticks(update, served, now_micros())]
                )

        async def trades() -> None:
            nonlocal last_update
            while True:
                update = await self.exchange.watch_trades_for_symbols(venue)
                last_update = loop.time()
                by_symbol: dict[str, list[Mapping[str, Any]]] = {}
                for trade in update:
                    by_symbol.setdefault(trade.get("symbol"), []).append(trade)
                ts_ingest = now_micros()
                await emit(
                    [
                        tick
                        for symbol, group in by_symbol.items()
                        if symbol in served
                        for tick in self._trade_ticks(group, served[symbol], ts_ingest)
                    ]
                )

        def seen() -> None:
            nonlocal last_update
            last_update = loop.time()

        async def watchdog() -> None:
            idle = 0.0
            while idle < self.stall_s:
                await asyncio.sleep(self.stall_s - idle)
                idle = loop.time() - last_update
            raise TimeoutError(f"the stream sent nothing for {self.stall_s:g} s")

        tasks = [
            asyncio.create_task(tickers()),
            asyncio.create_task(trades()),
            asyncio.create_task(watchdog()),
            asyncio.create_task(stop.wait()),
            asyncio.create_task(self.symbols_changed.wait()),
        ]
        if self.tap is not None:
            tasks.append(
                asyncio.create_task(watch_books(self.exchange, self.tap, served, emit, seen))
            )
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        failed = [error for task in done if (error := task.exception()) is not None]
        if failed:
            await self.exchange.close_ws_clients()
            raise failed[0]

    async def _call(self, call: Awaitable[Any]) -> Any:
        return await asyncio.wait_for(call, self.timeout_s)

    def _ticker_ticks(
        self, tickers: Mapping[str, Mapping[str, Any]], served: Mapping[str, str], ts_ingest: int
    ) -> list[RawTick]:
        ticks = []
        for symbol, ticker in tickers.items():
            if symbol in served and isinstance(ticker, Mapping):
                tick = ticker_to_tick(ticker, served[symbol], self.name, self.seq + 1, ts_ingest)
                if tick is not None:
                    self.seq += 1
                    ticks.append(tick)
        return ticks

    def _trade_ticks(
        self, trades: Iterable[Mapping[str, Any]], canonical: str, ts_ingest: int
    ) -> list[RawTick]:
        seen = self.seen_trades.setdefault(canonical, deque(maxlen=SEEN_TRADES))
        ticks = []
        for trade in trades:
            trade_id = trade.get("id")
            if trade_id is not None and str(trade_id) in seen:
                continue
            tick = trade_to_tick(trade, canonical, self.name, self.seq + 1, ts_ingest)
            if tick is not None:
                self.seq += 1
                ticks.append(tick)
                if tick.trade_id is not None:
                    seen.append(tick.trade_id)
        return ticks
