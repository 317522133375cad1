"""What the venues' order book messages say, read from the messages as ccxt.pro decoded them.

One reader per venue turns a decoded WebSocket message into :class:`BookFrame`s, one per
symbol it updates, with the levels as plain decimal text: the venue's own strings where it
sends strings (Binance, OKX, Coinbase: OKX's checksum is over them), and for Kraken, which
sends JSON numbers, the number written at the pair's precision, as Kraken's checksum wants.
Other messages give no frames.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

from schemas.books import DELTA, SNAPSHOT, BookEvent
from schemas.times import datetime_to_micros

MS_TO_US = 1000
OKX_DEPTHS = {"books": 400, "books-l2-tbt": 400, "books50-l2-tbt": 50, "books5": 5}


@dataclass(frozen=True, slots=True)
class BookFrame:
    """One venue message's news for one symbol (``symbol`` is ccxt's unified symbol).

    ``numbered`` is False when the venue gives the message no update id, so that the ingest
    numbers it itself.
    """

    symbol: str
    kind: str
    bids: list[list[str]]
    asks: list[list[str]]
    ts_event: int | None = None
    first_update_id: int | None = None
    last_update_id: int | None = None
    prev_update_id: int | None = None
    checksum: int | None = None
    depth: int | None = None
    numbered: bool = True


class Markets(Protocol):
    """What the readers need to know of the exchange's markets."""

    window: int | None

    def symbol_of(self, market_id: str) -> str:
        """ccxt's unified symbol of a venue market id (ccxt's ``safe_symbol``)."""
        ...

    def places(self, symbol: str) -> tuple[int, int]:
        """Decimals of the price and of the amount of ``symbol`` (the pair's precision)."""
        ...


def decimal_text(value: float, places: int | None = None) -> str:
    """A ccxt number as plain decimal text: at ``places`` decimals, else as short as exact."""
    number = Decimal(repr(float(value)))
    if places is None:
        return format(number.normalize(), "f")
    return format(number.quantize(Decimal(1).scaleb(-places)), "f")


def iso_micros(text: str) -> int:
    """Microseconds since the epoch of an ISO 8601 UTC time with up to 9 fraction digits."""
    head, _, fraction = text.rstrip("Z").partition(".")
    moment = datetime.fromisoformat(head).replace(tzinfo=UTC)
    return datetime_to_micros(moment) + int((fraction + "000000")[:6])


def _strings(levels: Any) -> list[list[str]]:
    return [[str(level[0]), str(level[1])] for level in levels or ()]


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _kraken_levels(levels: Any, places: tuple[int, int]) -> list[list[str]]:
    return [
        [decimal_text(level["price"], places[0]), decimal_text(level["qty"], places[1])]
        for level in levels or ()
    ]


def kraken(message: Mapping[str, Any], markets: Markets) -> list[BookFrame]:
    """Kraken WebSocket v2 ``book``: a snapshot or an update, levels ``{price, qty}``."""
    if message.get("channel") != "book" or message.get("type") not in ("snapshot", "update"):
        return []
    kind = SNAPSHOT if message["type"] == "snapshot" else DELTA
    frames = []
    for data in message.get("data") or ():
        symbol = data["symbol"]
        places = markets.places(symbol)
        stamp = data.get("timestamp")
        frames.append(
            BookFrame(
                symbol,
                kind,
                _kraken_levels(data.get("bids"), places),
                _kraken_levels(data.get("asks"), places),
                None if stamp is None else iso_micros(stamp),
                checksum=_int(data.get("checksum")),
                depth=markets.window,
                numbered=False,
            )
        )
    return frames


def okx(message: Mapping[str, Any], markets: Markets) -> list[BookFrame]:
    """OKX ``books`` (snapshot then updates with ``seqId``/``prevSeqId`` and a checksum),
    and ``books5`` (a whole 5-level book in every message)."""
    arg = message.get("arg") or {}
    depth = OKX_DEPTHS.get(str(arg.get("channel")))
    if depth is None or "data" not in message:
        return []
    action = message.get("action", "snapshot")
    kind = SNAPSHOT if action == "snapshot" else DELTA
    symbol = markets.symbol_of(arg["instId"])
    frames = []
    for data in message["data"]:
        previous = _int(data.get("prevSeqId"))
        frames.append(
            BookFrame(
                symbol,
                kind,
                _strings(data.get("bids")),
                _strings(data.get("asks")),
                int(data["ts"]) * MS_TO_US,
                last_update_id=_int(data.get("seqId")),
                prev_update_id=None if previous == -1 else previous,
                checksum=_int(data.get("checksum")),
                depth=depth,
                numbered=data.get("seqId") is not None,
            )
        )
    return frames


def binance(message: Mapping[str, Any], markets: Markets) -> list[BookFrame]:
    """Binance spot ``depthUpdate`` (plain or in a combined-stream ``{"stream", "data"}``)."""
    data = message.get("data", message) if "stream" in message else message
    if not isinstance(data, Mapping) or data.get("e") != "depthUpdate":
        return []
    return [
        BookFrame(
            markets.symbol_of(data["s"]),
            DELTA,
            _strings(data.get("b")),
            _strings(data.get("a")),
            int(data["E"]) * MS_TO_US,
            first_update_id=int(data["U"]),
            last_update_id=int(data["u"]),
        )
    ]


def coinbase(message: Mapping[str, Any], markets: Markets) -> list[BookFrame]:
    """Coinbase Advanced Trade ``l2_data``: per product a snapshot or updates of
    ``new_quantity`` per side; ``sequence_num`` numbers the connection's messages."""
    if message.get("channel") != "l2_data":
        return []
    stamp = message.get("timestamp")
    ts_event = None if stamp is None else iso_micros(stamp)
    number = _int(message.get("sequence_num"))
    frames = []
    for event in message.get("events") or ():
        sides: dict[str, list[list[str]]] = {"bid": [], "offer": []}
        for update in event.get("updates") or ():
            sides.setdefault(update["side"], []).append(
                [update["price_level"], update["new_quantity"]]
            )
        frames.append(
            BookFrame(
                markets.symbol_of(event["product_id"]),
                SNAPSHOT if event.get("type") == "snapshot" else DELTA,
                sides["bid"],
                sides["offer"],
                ts_event,
                last_update_id=number,
            )
        )
    return frames


READERS: dict[str, Callable[[Mapping[str, Any], Markets], list[BookFrame]]] = {
    "binance": binance,
    "coinbase": coinbase,
    "kraken": kraken,
    "okx": okx,
}


def ccxt_book(
    symbol: str, book: Mapping[str, Any], depth: int | None, places: tuple[int, int] | None = None
) -> BookFrame:
    """A snapshot frame of a book ccxt parsed: ``fetch_order_book``'s result, or ccxt.pro's
    book (Binance: the REST snapshot and the deltas ccxt applied after it); ``depth`` is the
    limit it was asked for, ``places`` the pair's precision when the venue's checksum needs
    it."""
    price_places, amount_places = places or (None, None)

    def levels(side: str) -> list[list[str]]:
        return [
            [decimal_text(level[0], price_places), decimal_text(level[1], amount_places)]
            for level in book.get(side) or ()
        ]

    stamp = book.get("timestamp")
    return BookFrame(
        symbol,
        SNAPSHOT,
        levels("bids"),
        levels("asks"),
        None if stamp is None else int(stamp) * MS_TO_US,
        last_update_id=_int(book.get("nonce")),
        depth=depth,
        numbered=book.get("nonce") is not None,
    )


def book_event(frame: BookFrame, symbol: str, provider: str, ts_ingest: int) -> BookEvent:
    """The record of ``frame`` for canonical ``symbol``; without a venue time, the event time
    is the ingest time."""
    return BookEvent(
        symbol,
        provider,
        frame.kind,
        ts_ingest if frame.ts_event is None else frame.ts_event,
        ts_ingest,
        frame.bids,
        frame.asks,
        frame.first_update_id,
        frame.last_update_id,
        frame.prev_update_id,
        frame.checksum,
        frame.depth,
    )
