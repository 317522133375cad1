"""Quote APIs over httpx that need an API key and have a daily quota (Alpha Vantage, FMP).

Requests are spaced evenly so that neither the per-minute nor the per-day limit of the
free tier is ever reached (:func:`spacing`), the key never appears in a log line or a
status, and failures are classified like the other providers'. A demanded symbol is
checked with one quote request, taking its turn among the polls' requests (so checks and
polls together keep the spacing, and a flood of checks takes at most every other request).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Iterable, Mapping
from typing import Any

import httpx

from ingest.providers import Batch, Emit
from ingest.providers.admission import ACCEPTED, Admission, Verdict, refused
from ingest.providers.base import RetryingProvider
from ingest.providers.failure import Failure
from runtime.backoff import LONG, NETWORK, RATE_LIMIT, parse_retry_after
from runtime.clock import now_micros
from runtime.redaction import MASK
from schemas import RawTick

logging.getLogger("httpx").setLevel(logging.WARNING)


def spacing(per_minute: int, per_day: int) -> float:
    """Seconds between requests that keep within both limits: 25/day is one every 57.6 min."""
    return max(60.0 / per_minute, 86_400.0 / per_day)


class QuotaExceeded(Exception):
    """The API answered that the key's quota is used up (HTTP 429 or a note in the body)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unauthorized(Exception):
    """The API refused the key."""


class NoData(Exception):
    """The API has nothing for the symbol."""


def classify_http_error(error: BaseException) -> Failure:
    """Quota -> back off; refused key -> long cooldown, DOWN; unknown symbol -> long
    cooldown, DEGRADED; timeouts, network errors and 5xx -> retry with backoff."""
    if isinstance(error, QuotaExceeded):
        return Failure("rate_limited", "DEGRADED", RATE_LIMIT)
    if isinstance(error, Unauthorized):
        return Failure("unauthorized", "DOWN", LONG)
    if isinstance(error, NoData):
        return Failure("missing_market", "DEGRADED", LONG)
    if isinstance(error, httpx.TimeoutException | TimeoutError):
        return Failure("timeout", "DOWN", NETWORK)
    if isinstance(error, httpx.TransportError | OSError):
        return Failure("network", "DOWN", NETWORK)
    if isinstance(error, httpx.HTTPStatusError) and error.response.status_code >= 500:
        return Failure("unavailable", "DOWN", NETWORK)
    return Failure("bad_response", "DEGRADED", NETWORK)


class KeyedClient(RetryingProvider):
    """What a provider with an API key and an httpx ``client`` shares: failures classified,
    ``Retry-After`` honoured, the key masked in messages, the client closed at the end."""

    api_key: str
    client: httpx.AsyncClient

    def classify(self, error: BaseException) -> Failure:
        """See :func:`classify_http_error`."""
        return classify_http_error(error)

    def retry_after(self, error: BaseException) -> float | None:
        """The ``Retry-After`` of a 429."""
        return getattr(error, "retry_after", None)

    def mask(self, text: str) -> str:
        """The text with the API key masked."""
        return text.replace(self.api_key, MASK) if self.api_key else text

    async def close(self) -> None:
        """Close the HTTP client."""
        await self.client.aclose()


class KeyedQuoteProvider(KeyedClient):
    """Requests one symbol's quote at a time, round-robin, ``spacing`` seconds apart."""

    base_url = ""
    per_minute = 1
    per_day = 1

    def __init__(
        self,
        name: str,
        api_key: str,
        symbols: Iterable[str],
        *,
        timeout_s: float,
        per_day: int | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        rng: random.Random | None = None,
        admission: Admission | None = None,
    ) -> None:
        super().__init__(name, symbols, rng, admission)
        self.api_key = api_key
        self.client = httpx.AsyncClient(
            base_url=self.base_url, timeout=timeout_s, transport=transport
        )
        self.interval = spacing(self.per_minute, per_day or self.per_day)
        self.seq = 0
        self.next_index = 0
        self.turns = asyncio.Lock()
        self.next_turn = float("-inf")

    def accepts(self, symbol: str) -> bool:
        """Tickers; no pairs."""
        return "/" not in symbol

    def params(self, symbol: str) -> tuple[str, dict[str, str]]:
        """Path and query (without the key) of the quote request for ``symbol``."""
        raise NotImplementedError

    def parse(self, symbol: str, body: Any, seq: int, ts_ingest: int) -> RawTick:
        """The tick in a decoded response; raises QuotaExceeded, Unauthorized or NoData."""
        raise NotImplementedError

    async def take_turn(self) -> None:
        """Wait for the next request's turn: ``interval`` seconds after the last one, first
        come first served."""
        async with self.turns:
            loop = asyncio.get_running_loop()
            await asyncio.sleep(max(0.0, self.next_turn - loop.time()))
            self.next_turn = loop.time() + self.interval

    async def fetch(self, symbol: str) -> RawTick:
        """One quote request, its HTTP status checked before its body is parsed."""
        path, query = self.params(symbol)
        body = await get_json(self.client, path, query, self.api_key)
        tick = self.parse(symbol, body, self.seq + 1, now_micros())
        self.seq += 1
        return tick

    async def check(self, symbol: str) -> tuple[Verdict, Batch]:
        """One quote request: no quote refuses the symbol, a quote accepts it and goes out."""
        await self.take_turn()
        try:
            tick = await self.fetch(symbol)
        except NoData:
            return refused("not_found"), []
        return ACCEPTED, [tick]

    async def session(self, emit: Emit, stop: asyncio.Event) -> None:
        """Request the symbols round-robin, one every ``interval`` seconds (checks take
        turns in between); with none to serve, wait until there are some."""
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            if not self.symbols:
                self.symbols_changed.clear()
                await self.symbols_changed.wait()
                continue
            await self.take_turn()
            if not self.symbols:
                continue
            symbol = self.symbols[self.next_index % len(self.symbols)]
            self.next_index += 1
            started = loop.time()
            tick = await self.fetch(symbol)
            await emit([*self.up_status((loop.time() - started) * 1000), tick])


async def get_json(
    client: httpx.AsyncClient, path: str, query: Mapping[str, str], api_key: str
) -> Any:
    """The decoded body of ``GET path`` with the key; HTTP 429 raises QuotaExceeded, 401 and
    403 Unauthorized, any other error status httpx's HTTPStatusError."""
    response = await client.get(path, params={**query, "apikey": api_key})
    if response.status_code == 429:
        raise QuotaExceeded("HTTP 429", parse_retry_after(response.headers.get("Retry-After")))
    if response.status_code in (401, 403):
        raise Unauthorized(f"HTTP {response.status_code}")
    response.raise_for_status()
    return response.json()


def number(record: Mapping[str, Any], key: str) -> float | None:
    """A numeric field that may come as a string, or None when absent or empty."""
    value = record.get(key)
    if value in (None, ""):
        return None
    return float(value)
