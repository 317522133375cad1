"""Golden log: the engine's encoded outputs of a fixed generated raw log never change.

The log is made from a seeded ``random.Random`` (no library that could change under it):
five venues quoting and trading three symbols, with every path of the engine taken
(outliers, duplicates, late and future ticks, bad prices, crossed books, bad sizes,
undecodable values, ticks out of order, a venue going DOWN and UP). The digest is of every
message :func:`messages` makes (topic role, key, value, marker), so a refactoring of the
engine or of the codec that changes one output byte fails here. Only a deliberate change of
the outputs may update ``DIGEST``, saying so in its commit.
"""

from __future__ import annotations

import hashlib
import random

from arbitration.engine.outputs import messages
from arbitration.engine.partition import PartitionEngine, SourceRecord
from arbitration.engine.statuses import StatusTimeline
from schemas import encode
from schemas.records import ProviderStatus, RawTick
from tests.factories import MS, T0, default_config

SYMBOLS = {"AAPL": 190.0, "BTC/USDT": 97_000.0, "ETH/USDT": 3_400.0}
VENUES = ("alpha", "beta", "gamma", "delta", "epsilon")
RECORDS = 6_000
DIGEST = "ebd45c5e9486a81248b4e507137d2fcb79d1357f2819cbee246ced7584c242f3"


def golden_log() -> tuple[list[SourceRecord], StatusTimeline]:
    """The raw records and the provider statuses of the golden log."""
    rng = random.Random(20261205)
    timeline = StatusTimeline()
    timeline.add(ProviderStatus("gamma", T0 + 60_000 * MS, "DOWN"))
    timeline.add(ProviderStatus("gamma", T0 + 90_000 * MS, "UP"))
    timeline.add(ProviderStatus("delta", T0 + 30_000 * MS, "DEGRADED", latency_ms=900.0))
    prices = dict(SYMBOLS)
    seqs = dict.fromkeys(VENUES, 0)
    records: list[SourceRecord] = []
    sent: list[bytes] = []
    now = T0
    for offset in range(RECORDS):
        now += rng.randrange(0, 40 * MS)
        symbol = rng.choice(list(SYMBOLS))
        venue = rng.choice(VENUES)
        prices[symbol] *= 1 + rng.gauss(0, 0.0004)
        price = prices[symbol] * (1 + rng.gauss(0, 0.0001))
        seqs[venue] += 1
        event = now - rng.randrange(0, 300 * MS)
        fields: dict = {}
        kind = "TRADE" if rng.random() < 0.2 else "QUOTE"
        if kind == "TRADE":
            fields.update(trade_id=f"{venue}-{seqs[venue]}", trade_size=rng.uniform(0.01, 5))
            fields["side"] = rng.choice(("buy", "sell", None))
        elif rng.random() < 0.7:
            half = price * rng.uniform(0, 0.0005)
            fields.update(bid=price - half, ask=price + half, bid_size=rng.uniform(1, 9))
            fields.update(ask_size=rng.choice((None, 2.5)), volume=rng.uniform(0, 1e6))
            fields["reference_price"] = rng.choice((None, SYMBOLS[symbol]))
        fault = rng.random()
        if venue == "epsilon" and fault < 0.3:
            price *= 1.05  # a venue away from the others: outliers
        elif fault < 0.01:
            price = rng.choice((0.0, -1.0, float("nan"), float("inf")))
        elif fault < 0.02 and kind == "QUOTE":
            fields.update(bid=price * 1.01, ask=price * 0.99)
        elif fault < 0.03 and kind == "TRADE":
            fields["trade_size"] = rng.choice((0.0, None))
        elif fault < 0.04:
            event = now + 10_000 * MS  # from the future
        elif fault < 0.05:
            event = now - 120_000 * MS  # late
        tick = RawTick(symbol, venue, kind, event, now, seqs[venue], price, **fields)
        value: bytes | None = encode(tick)
        if fault > 0.995 and sent:
            value = rng.choice(sent)  # a duplicate of an earlier record
        elif 0.99 < fault <= 0.995:
            value = rng.choice((None, b"", b"\x00\x00\x00\x00\x01junk", value[:9]))
        if value:
            sent.append(value)
        records.append(SourceRecord(offset, symbol.encode(), value, now + rng.randrange(MS)))
    return records, timeline


def digest_of_outputs() -> tuple[str, int]:
    """The sha256 of every message of the golden log, and how many there are."""
    records, timeline = golden_log()
    engine = PartitionEngine(default_config(), "raw", 0, timeline)
    digest = hashlib.sha256()
    count = 0
    for record in records:
        for message in messages(record.offset, engine.process(record), {}):
            count += 1
            digest.update(message.role.value.encode())
            digest.update(b"\x00" if message.key is None else b"\x01" + message.key)
            digest.update(len(message.value).to_bytes(4, "big") + message.value)
            digest.update(b"".join(value for _, value in message.headers))
    for candle in engine.flush():
        count += 1
        digest.update(encode(candle))
    return digest.hexdigest(), count


def test_outputs_of_the_golden_log_are_unchanged():
    found, count = digest_of_outputs()
    assert count > RECORDS // 2, "the log makes outputs"
    assert found == DIGEST
