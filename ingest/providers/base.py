"""What every network provider shares: the retry loop, UP statuses and failure reports."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Iterable

from ingest.providers import Emit
from ingest.providers.failure import Failure
from runtime.clock import now_micros
from runtime.service import until_stopped
from schemas import ProviderStatus

log = logging.getLogger("fiml.ingest.providers")

STATUS_EVERY_S = 5.0


class RetryingProvider:
    """Runs :meth:`session` again and again; each failure is classified, reported as a
    ProviderStatus and followed by its backoff. Subclasses implement ``session`` and
    ``classify`` and call :meth:`up_status` whenever data arrived."""

    def __init__(self, name: str, symbols: Iterable[str], rng: random.Random | None = None) -> None:
        self.name = name
        self.base_symbols = tuple(symbol for symbol in symbols if self.accepts(symbol))
        self.symbols = self.base_symbols
        self.symbols_changed = asyncio.Event()
        self.rng = rng or random.Random()
        self.attempt = 0
        self.up = False
        self.last_status_s = float("-inf")

    async def session(self, emit: Emit, stop: asyncio.Event) -> None:
        """Serve data until ``stop`` is set; raise on any failure."""
        raise NotImplementedError

    def classify(self, error: BaseException) -> Failure:
        """The status and backoff a failure calls for."""
        raise NotImplementedError

    def retry_after(self, error: BaseException) -> float | None:
        """Seconds the server asked us to wait, if it said so."""
        return None

    def accepts(self, symbol: str) -> bool:
        """Whether this provider can serve the canonical ``symbol`` at all."""
        return True

    def set_demand(self, extra: frozenset[str]) -> None:
        """Serve the configured symbols and those of ``extra`` this provider accepts."""
        symbols = self.base_symbols + tuple(
            sorted(
                symbol
                for symbol in extra
                if self.accepts(symbol) and symbol not in self.base_symbols
            )
        )
        if symbols != self.symbols:
            self.symbols = symbols
            self.symbols_changed.set()

    def describe(self, error: BaseException) -> str:
        """The error as text for a status message; must never contain a secret."""
        return str(error).strip()[:200] or type(error).__name__

    async def close(self) -> None:
        """Release network resources."""

    async def run(self, emit: Emit, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set, backing off after each failure; never raises for one."""
        try:
            while not stop.is_set():
                try:
                    await until_stopped(self.session(emit, stop), stop)
                except Exception as error:  # a venue fault of any shape must not end ingest
                    delay = await self.report_failure(emit, error)
                    await wait(stop, delay)
        finally:
            with contextlib.suppress(Exception):
                await self.close()

    def up_status(self, latency_ms: float | None) -> list[ProviderStatus]:
        """An UP status when the provider just recovered or every few seconds, else none."""
        self.attempt = 0
        loop_now = asyncio.get_running_loop().time()
        if self.up and loop_now - self.last_status_s < STATUS_EVERY_S:
            return []
        self.up = True
        self.last_status_s = loop_now
        return [ProviderStatus(self.name, now_micros(), "UP", latency_ms=latency_ms)]

    async def report_failure(self, emit: Emit, error: BaseException) -> float:
        """Emit the failure's status and return the seconds to wait before retrying."""
        failure = self.classify(error)
        retry_after = self.retry_after(error) if failure.kind == "rate_limited" else None
        delay = failure.backoff.delay(self.attempt, self.rng, retry_after)
        self.attempt += 1
        self.up = False
        message = f"{type(error).__name__}: {self.describe(error)}; retrying in {delay:.1f} s"
        log.warning("%s %s", self.name, message, extra={"provider": self.name})
        await emit(
            [
                ProviderStatus(
                    self.name, now_micros(), failure.state, error_kind=failure.kind, message=message
                )
            ]
        )
        return delay


async def wait(stop: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds`` or until ``stop`` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
