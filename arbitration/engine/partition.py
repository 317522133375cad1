"""The arbitration engine of one raw partition: raw records in, output records out.

Pure: no I/O, no clock, no randomness. :meth:`PartitionEngine.process` takes the raw
records of one partition of ``fiml.ticks.raw`` in offset order and returns, for each, the
records to write: Rejected (to the DLQ), Trade, Quote and Candle. Feeding the same records
into a new engine gives the same outputs, which is what recovery and rebuild rely on.

Per record, in this order: the pending candle updates, if the record's Kafka time is in a
later slot of ``candle_flush_us`` (100 ms) than every record before it; decode
(``undecodable`` on failure); the validity checks of :meth:`SymbolBook.refuse`; the tick
observed (it moves the event time); statuses whose time has come
(``arbitration/statuses.py``); candles the new event time closes; the outlier check of
:meth:`SymbolBook.outlier`; then the Trade or the Quote. The candles a Trade or Quote
changes get their update record at the next flush: one record per changed candle per slot
instead of one per tick. Kafka time is part of the
log, so when updates are written depends on the log alone, never on how the records were
batched or when they were processed; a closing candle's pending update is dropped, its
final record carrying the same values.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from arbitration.engine.candles import CandleSeries
from arbitration.engine.checks import Refusal
from arbitration.engine.config import EngineConfig
from arbitration.engine.quote_book import SymbolBook
from arbitration.engine.statuses import ProviderHealth, StatusTimeline
from schemas import DecodeError, RawTick, decode
from schemas.records import Candle, Quote, Rejected, Trade
from schemas.topics import RECORD_TOPICS, TopicRole

Output = Quote | Candle | Trade | Rejected

ROLES: dict[type, TopicRole] = {
    kind: RECORD_TOPICS[kind] for kind in (Quote, Candle, Trade, Rejected)
}

# A rejection keeps at most this much of its input's value and key, so that it always fits
# in a Kafka record whatever a producer wrote (``detail`` says when a value was cut).
MAX_KEPT_BYTES = 64 * 1024
# Symbols to forget are looked for once per second of the partition's event time.
EVICT_CHECK_US = 1_000_000


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """One record of the raw partition as Kafka stores it."""

    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_us: int


def output_key(record: Output) -> bytes | None:
    """The Kafka key of an output record: its symbol, or the input's key if it has none."""
    if isinstance(record, Rejected):
        return record.key if record.symbol is None else record.symbol.encode()
    return record.symbol.encode()


class PartitionEngine:
    """Books, candles and provider health for the symbols of one raw partition."""

    def __init__(
        self, config: EngineConfig, topic: str, partition: int, statuses: StatusTimeline
    ) -> None:
        self.config = config
        self.topic = topic
        self.partition = partition
        self.statuses = statuses
        self.books: dict[str, SymbolBook] = {}
        self.candles: dict[str, CandleSeries] = {}
        self.health: dict[str, ProviderHealth] = {}
        self.rejections: Counter[str] = Counter()
        self.next_offset: int | None = None
        self.watermark: int | None = None
        self._status_until: int | None = None
        self._slot: int | None = None
        self._dirty: dict[CandleSeries, None] = {}
        self._evict_checked: int | None = None

    def process(self, record: SourceRecord) -> list[Output]:
        """Outputs of one raw record, the next in offset order."""
        self.next_offset = record.offset + 1
        slot = record.timestamp_us // self.config.candle_flush_us
        outputs: list[Output] = []
        if self._slot is None or slot > self._slot:
            self._slot = slot
            if self._dirty:
                outputs.extend(self.flush())
        try:
            tick = decode(record.value, RawTick)
        except DecodeError as error:
            outputs.append(self._reject(record, None, "undecodable", f"{error.reason}: {error}"))
            return outputs
        book = self.books.get(tick.symbol)
        if book is None:
            refusal = self._forgotten(tick.ts_event)
            if refusal is not None:
                outputs.append(self._reject(record, tick, *refusal))
                return outputs
            book = self.books[tick.symbol] = SymbolBook(tick.symbol, self.config)
            self.candles[tick.symbol] = CandleSeries(tick.symbol, self.config.effective_lateness_us)
        refusal = book.refuse(tick)
        if refusal is not None:
            book.reject(tick)
            outputs.append(self._reject(record, tick, *refusal))
            return outputs
        book.observe(tick)
        self._apply_statuses(tick.ts_event)
        outputs.extend(self._evict(record.offset))
        series = self.candles[tick.symbol]
        assert book.watermark is not None, "an observed tick has moved the event time"
        closed = series.close_until(book.watermark, record.offset)
        if closed:
            outputs.extend(closed)
        refusal = book.outlier(tick, self.health)
        if refusal is not None:
            book.reject(tick, outlier=True)
            outputs.append(self._reject(record, tick, *refusal))
            return outputs
        book.accept(tick)
        if tick.kind == "TRADE":
            size = tick.trade_size
            assert size is not None, "bad_size refuses a trade without one"
            outputs.append(_trade(tick, size))
            if series.mark_trade(tick.ts_event, record.offset, size):
                self._dirty[series] = None
        else:
            quote = book.quote(tick, record.offset, self.health)
            if quote is not None:
                outputs.append(quote)
                if series.mark_price(quote.ts_event, quote.seq, quote.price):
                    self._dirty[series] = None
        return outputs

    def flush(self) -> list[Candle]:
        """The pending candle updates of every symbol, in the order the symbols' candles first
        changed."""
        records = [record for series in self._dirty for record in series.flush()]
        self._dirty.clear()
        return records

    def _forgotten(self, ts_event: int) -> Refusal | None:
        """Why a tick of a symbol without a book is too old to start one, or None."""
        allowed = self.config.forgotten_us
        if self.watermark is not None and ts_event < self.watermark - allowed:
            behind = self.watermark - ts_event
            return "late", f"{behind} us behind the partition's event time (allowed {allowed} us)"
        return None

    def _evict(self, seq: int) -> list[Candle]:
        """Forget the symbols whose last tick the partition's event time has passed by more
        than ``effective_evict_us``, checked once per second of event time; the final records
        of their open candles (all of which the partition's event time has closed)."""
        assert self.watermark is not None, "an observed tick has moved the event time"
        second = self.watermark // EVICT_CHECK_US
        if self._evict_checked is not None and second <= self._evict_checked:
            return []
        self._evict_checked = second
        horizon = self.watermark - self.config.effective_evict_us
        closed: list[Candle] = []
        stale = [s for s, b in self.books.items() if b.watermark is None or b.watermark < horizon]
        for symbol in stale:
            del self.books[symbol]
            series = self.candles.pop(symbol)
            self._dirty.pop(series, None)
            closed.extend(series.close_until(self.watermark, seq))
        return closed

    def _apply_statuses(self, ts_event: int) -> None:
        if self.watermark is not None and ts_event <= self.watermark:
            return
        self.watermark = ts_event
        until = ts_event - self.config.effective_status_delay_us - 1
        if self._status_until is not None and until <= self._status_until:
            return
        for status in self.statuses.between(self._status_until, until):
            health = self.health.get(status.provider)
            if health is None:
                health = self.health[status.provider] = ProviderHealth()
            health.apply(status)
        self._status_until = until

    def _reject(
        self, record: SourceRecord, tick: RawTick | None, reason: str, detail: str
    ) -> Rejected:
        self.rejections[reason] += 1
        original = record.value or b""
        if len(original) > MAX_KEPT_BYTES:
            detail = f"{detail} (original cut to its first {MAX_KEPT_BYTES} bytes)"
        return Rejected(
            source_topic=self.topic,
            source_partition=self.partition,
            source_offset=record.offset,
            reason=reason,
            detail=detail,
            original=original[:MAX_KEPT_BYTES],
            ts_input=record.timestamp_us,
            key=None if record.key is None else record.key[:MAX_KEPT_BYTES],
            symbol=None if tick is None else tick.symbol,
            provider=None if tick is None else tick.provider,
            ts_event=None if tick is None else tick.ts_event,
        )


def _trade(tick: RawTick, size: float) -> Trade:
    return Trade(
        symbol=tick.symbol,
        trade_id=tick.trade_id or f"{tick.provider}#{tick.seq}",
        provider=tick.provider,
        ts_event=tick.ts_event,
        ts_ingest=tick.ts_ingest,
        price=tick.price,
        amount=size,
        side=tick.side,
    )
