"""What every network provider shares: the retry loop, UP statuses, failure reports and,
for the live quote providers, the check of each demanded symbol before it is served
(:mod:`ingest.providers.admission`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Iterable

from ingest.providers import Batch, Emit
from ingest.providers.admission import Admission, Verdict
from ingest.providers.failure import Failure
from runtime.clock import now_micros
from runtime.redaction import redact
from runtime.service import until_stopped
from schemas import ProviderStatus

log = logging.getLogger("fiml.ingest.providers")

STATUS_EVERY_S = 5.0
CHECK_RETRY_S = 60.0
CHECK_EVERY_S = 1.0


class RetryingProvider:
    """Runs :meth:`session` again and again; each failure is classified, reported as a
    ProviderStatus and followed by its backoff. Subclasses implement ``session`` and
    ``classify`` and call :meth:`up_status` whenever data arrived. With an ``admission``,
    a demanded symbol is served only once :meth:`check` accepted it."""

    def __init__(
        self,
        name: str,
        symbols: Iterable[str],
        rng: random.Random | None = None,
        admission: Admission | None = None,
    ) -> None:
        self.name = name
        self.base_symbols = tuple(symbol for symbol in symbols if self.accepts(symbol))
        self.symbols = self.base_symbols
        self.symbols_changed = asyncio.Event()
        self.admission = admission
        self.demanded: tuple[str, ...] = ()
        self.demand_changed = asyncio.Event()
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

    async def check(self, symbol: str) -> tuple[Verdict, Batch]:
        """Whether this provider has ``symbol``, and the records the check yielded; raises
        when it could not tell (network, quota)."""
        raise NotImplementedError

    def set_demand(self, extra: frozenset[str]) -> None:
        """Serve the configured symbols and those of ``extra`` this provider accepts (and,
        with an admission, whose check accepted them)."""
        self.demanded = tuple(
            sorted(
                symbol
                for symbol in extra
                if self.accepts(symbol) and symbol not in self.base_symbols
            )
        )
        if self.admission is not None:
            self.admission.forget(self.demanded, time.monotonic())
            self.demand_changed.set()
        self._serve_admitted()

    def _serve_admitted(self) -> None:
        admission = self.admission
        symbols = self.base_symbols + tuple(
            symbol for symbol in self.demanded if admission is None or admission.admitted(symbol)
        )
        if symbols != self.symbols:
            self.symbols = symbols
            self.symbols_changed.set()

    def describe(self, error: BaseException) -> str:
        """The error as text for a status message, secrets masked before it is cut to 200
        characters (a key cut in two would escape the mask)."""
        return redact(self.mask(str(error).strip()))[:200] or type(error).__name__

    def mask(self, text: str) -> str:
        """``text`` with this provider's own secrets masked (none by default)."""
        return text

    async def close(self) -> None:
        """Release network resources."""

    async def run(self, emit: Emit, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set, backing off after each failure; never raises for one."""
        checks = None if self.admission is None else asyncio.create_task(self._checks(emit, stop))
        try:
            while not stop.is_set():
                try:
                    await until_stopped(self.session(emit, stop), stop)
                except Exception as error:  # a venue fault of any shape must not end ingest
                    delay = await self.report_failure(emit, error)
                    await wait(stop, delay)
        finally:
            if checks is not None:
                checks.cancel()
                await asyncio.gather(checks, return_exceptions=True)
            with contextlib.suppress(Exception):
                await self.close()

    async def _checks(self, emit: Emit, stop: asyncio.Event) -> None:
        """Check the demanded symbols that are due whenever demand changes (and every
        ``CHECK_EVERY_S``), until cancelled."""
        while not stop.is_set():
            self.demand_changed.clear()
            await self._check_due(emit, stop)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.demand_changed.wait(), CHECK_EVERY_S)

    async def _check_due(self, emit: Emit, stop: asyncio.Event) -> None:
        """Check the due symbols one by one (still demanded at each turn) while the bound
        allows; a check that could not tell pauses the checks for ``CHECK_RETRY_S``."""
        admission = self.admission
        assert admission is not None
        while due := admission.due(self.demanded, time.monotonic()):
            if not admission.take(time.monotonic()):
                return
            symbol = due[0]
            try:
                verdict, batch = await self.check(symbol)
            except Exception as error:  # a lookup fault of any shape: check again later
                log.warning(
                    "%s could not check %s (%s: %s); checking again in %.0f s",
                    self.name,
                    symbol,
                    type(error).__name__,
                    self.describe(error),
                    CHECK_RETRY_S,
                    extra={"provider": self.name},
                )
                admission.could_not_tell(symbol, time.monotonic())  # the others go first
                await wait(stop, CHECK_RETRY_S)
                return
            admission.record(symbol, verdict, time.monotonic())
            self._serve_admitted()
            if batch:
                await emit(batch)

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
