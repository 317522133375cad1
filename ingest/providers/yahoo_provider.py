"""Yahoo Finance through yfinance, as the provider ``yfinance``.

Where the installed yfinance has ``AsyncWebSocket`` the provider streams Yahoo's pricing
updates; else it polls. Streaming: it connects and subscribes through ``AsyncWebSocket``
and decodes each frame with the library's own protobuf decoding. It reads the socket itself
rather than through ``listen()``, which reconnects on its own terms and busy-loops the event
loop once the server closes the socket cleanly. A stream quiet for ``stall_s`` (a closed
market sends nothing) is checked with one poll round, whose ticks go out too; a failed
connection or a malformed frame ends the session with a status and a backoff.

Polling reads the chart metadata (``regularMarketPrice`` and its time) of every served
ticker, at least ``poll_seconds`` apart. yfinance's HTTP is blocking, so every chart call
runs on the provider's own worker thread, never on the event loop, and is given up on after
the call timeout. Each provider passes its own curl_cffi session (the kind yfinance would
make) with every call rather than relying on whatever session yfinance last held. yfinance
is told to raise its errors (``config.debug.hide_exceptions = False``) rather than log them
and return nothing, so each becomes a status.

A demanded ticker is served once one chart call found it (:meth:`YahooProvider.check`).

Equities, ETFs, indices (``^GSPC``), futures (``GC=F``) and forex (``EUR/USD`` as
``EURUSD=X``) are served; crypto pairs are left to the exchanges.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import yfinance as yf
from curl_cffi import requests as curl_requests

from ingest.providers import Batch, Emit
from ingest.providers.admission import ACCEPTED, Admission, Verdict, refused
from ingest.providers.base import RetryingProvider, wait
from ingest.providers.failure import Failure
from ingest.providers.yahoo_mapping import (
    chart_meta,
    chart_to_tick,
    classify_yahoo_error,
    pricing_to_tick,
    yahoo_symbol,
    yahoo_symbols,
)
from runtime.backoff import LONG
from runtime.clock import now_micros
from runtime.private import private_attribute
from schemas import ProviderStatus, RawTick

STREAMER_URL = "wss://streamer.finance.yahoo.com/?version=2"
CHART_URL = "https://query2.finance.yahoo.com/v8/finance/chart/{}"
CHECK_PARAMS = {"range": "1d", "interval": "1d"}


class YahooProvider(RetryingProvider):
    """Streams (or polls) Yahoo's prices of the served symbols."""

    def __init__(
        self,
        symbols: Iterable[str],
        *,
        timeout_s: float,
        poll_seconds: float,
        stall_s: float | None = None,
        http: Any = None,
        stream_url: str = STREAMER_URL,
        streaming: bool | None = None,
        rng: random.Random | None = None,
        admission: Admission | None = None,
    ) -> None:
        super().__init__("yfinance", symbols, rng, admission)
        self.timeout_s = timeout_s
        self.stall_s = timeout_s if stall_s is None else stall_s
        self.poll_seconds = poll_seconds
        self.http = http if http is not None else curl_requests.Session(impersonate="chrome")
        self.stream_url = stream_url
        self.streaming = hasattr(yf, "AsyncWebSocket") if streaming is None else streaming
        self.seq = 0
        self.skipped: dict[str, float] = {}
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="yfinance")
        yf.config.debug.hide_exceptions = False

    def accepts(self, symbol: str) -> bool:
        """Tickers and fiat pairs; crypto pairs are the exchanges'."""
        return yahoo_symbol(symbol) is not None

    @property
    def served(self) -> dict[str, str]:
        """``{Yahoo ticker: canonical symbol}`` of the symbols served now."""
        return yahoo_symbols(self.symbols)

    async def check(self, symbol: str) -> tuple[Verdict, Batch]:
        """One chart request (:meth:`_chart_lookup`): a ticker Yahoo does not know is
        refused, a known one accepted with its tick."""
        ticker = yahoo_symbol(symbol)
        assert ticker is not None
        loop = asyncio.get_running_loop()
        meta = await asyncio.wait_for(
            loop.run_in_executor(self.executor, self._chart_lookup, ticker), self.timeout_s
        )
        if meta is None:
            return refused("not_found"), []
        tick = chart_to_tick(meta, symbol, self.name, self.seq + 1, now_micros())
        if tick is None:
            return ACCEPTED, []
        self.seq += 1
        return ACCEPTED, [tick]

    def classify(self, error: BaseException) -> Failure:
        """See :func:`classify_yahoo_error`."""
        return classify_yahoo_error(error)

    async def close(self) -> None:
        """Let the worker thread go (a call still hanging there is abandoned)."""
        self.executor.shutdown(wait=False, cancel_futures=True)

    def _chart_meta(self, ticker: str) -> dict[str, Any]:
        quotes = yf.Ticker(ticker, session=self.http)
        quotes.history(period="1d", interval="1m", timeout=self.timeout_s)
        meta: dict[str, Any] = quotes.get_history_metadata()
        return meta

    def _chart_lookup(self, ticker: str) -> dict[str, Any] | None:
        """The chart metadata of ``ticker`` from exactly one request on the provider's
        session, or None when Yahoo does not know it. Not through yfinance's history, which
        first looks the timezone up and repeats every answer of HTTP 400 and above with its
        other cookie strategy: two to four requests for an unknown ticker."""
        response = self.http.get(
            CHART_URL.format(ticker), params=CHECK_PARAMS, timeout=self.timeout_s
        )
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return chart_meta(response.json())

    async def _off_loop(self, ticker: str) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        return await asyncio.wait_for(
            loop.run_in_executor(self.executor, self._chart_meta, ticker), self.timeout_s
        )

    async def session(self, emit: Emit, stop: asyncio.Event) -> None:
        """Stream where yfinance can, else poll, until ``stop`` is set."""
        if self.streaming:
            await self._stream(emit)
            return
        while not stop.is_set():
            await self._poll_round(emit)
            await wait(stop, self.poll_seconds)

    async def _poll_round(self, emit: Emit) -> None:
        """Poll every served ticker once; one Yahoo does not know is reported and skipped
        for a long cooldown, any other failure ends the session."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        ticks: list[RawTick] = []
        statuses: list[RawTick | ProviderStatus] = []
        for ticker, canonical in self.served.items():
            if self.skipped.get(ticker, 0.0) > started:
                continue
            try:
                meta = await self._off_loop(ticker)
            except Exception as error:
                if self.classify(error).kind != "missing_market":
                    raise
                delay = LONG.delay(0, self.rng)
                self.skipped[ticker] = loop.time() + delay
                statuses.append(
                    ProviderStatus(
                        self.name,
                        now_micros(),
                        "DEGRADED",
                        error_kind="missing_market",
                        message=f"Yahoo has no data for {canonical} ({ticker}); "
                        f"retrying it in {delay:.1f} s",
                    )
                )
                continue
            tick = chart_to_tick(meta, canonical, self.name, self.seq + 1, now_micros())
            if tick is not None:
                self.seq += 1
                ticks.append(tick)
        if ticks:
            latency_ms = (loop.time() - started) * 1000 / len(ticks)
            statuses.extend(self.up_status(latency_ms))
        await emit([*statuses, *ticks])

    async def _stream(self, emit: Emit) -> None:
        """Subscribe to the served tickers and report their updates until the served
        symbols change; a quiet stream gets a poll round."""
        self.symbols_changed.clear()
        served = self.served
        socket = yf.AsyncWebSocket(self.stream_url, verbose=False)
        changed = asyncio.ensure_future(self.symbols_changed.wait())
        receive: asyncio.Future[Any] = changed
        try:
            await asyncio.wait_for(socket.subscribe(list(served)), self.timeout_s)
            while not changed.done():
                connection = private_attribute(socket, "_ws", "yfinance")
                receive = asyncio.ensure_future(connection.recv())
                done, _ = await asyncio.wait(
                    (receive, changed), timeout=self.stall_s, return_when=asyncio.FIRST_COMPLETED
                )
                if receive in done:
                    await emit(self._pricing_ticks(socket, receive.result(), served))
                elif not done:
                    receive.cancel()
                    await self._poll_round(emit)
        finally:
            for task in (receive, changed):
                task.cancel()
            await asyncio.gather(receive, changed, return_exceptions=True)
            await socket.close()

    def _pricing_ticks(
        self, socket: Any, frame: str | bytes, served: dict[str, str]
    ) -> list[ProviderStatus | RawTick]:
        decode = private_attribute(socket, "_decode_message", "yfinance")
        message = decode(json.loads(frame)["message"])
        canonical = served.get(message.get("id"))
        if canonical is None:
            return []
        tick = pricing_to_tick(message, canonical, self.name, self.seq + 1, now_micros())
        if tick is None:
            return []
        self.seq += 1
        return [*self.up_status(None), tick]
