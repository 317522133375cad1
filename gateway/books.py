"""What the gateway knows of order books: the latest consolidated book of each symbol.

The books come from the compacted ``books.consolidated`` topic (one per symbol per
``FIML_BOOK_SNAPSHOT_MS`` of Kafka time). A venue's book is read off the consolidated one:
the levels where that venue has a size, with its size (so a venue that is not fresh shows an
empty book). Each orderbook subscription has one :class:`BookPublisher` per symbol, asked for
a message each time the subscription is paced (every ``interval_ms``): a snapshot first, then
deltas against the book last *sent*, with ``seq`` and a CRC32 checksum
(``domain/books/protocol.py``), so conflation never leaves a client with a book it cannot
rebuild.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from domain.books.protocol import CONSOLIDATED, BookPublisher, BookView, consolidated_view
from schemas.books import ConsolidatedBook

if TYPE_CHECKING:
    from gateway.subscription import Subscription


def venue_of(view: BookView, venue: str) -> BookView:
    """The book of one venue of a consolidated view: its levels, with its sizes."""
    if venue == CONSOLIDATED:
        return view
    if venue not in view.venues:
        return BookView(view.symbol, venue, view.ts_event, (), ())
    index = view.venues.index(venue)

    def levels(side: tuple[tuple[str, str, tuple[str, ...]], ...]) -> tuple[Any, ...]:
        return tuple((price, sizes[index], ()) for price, _, sizes in side if sizes[index])

    return BookView(view.symbol, venue, view.ts_event, levels(view.bids), levels(view.asks))


class BookStore:
    """Symbol to its latest consolidated book; a book replaces another only if it is newer
    (a larger ``seq``, the input offset, or a later event time)."""

    def __init__(self) -> None:
        self.views: dict[str, BookView] = {}
        self.books: dict[str, ConsolidatedBook] = {}
        self.versions: dict[str, int] = {}
        self.version = 0

    def forget(self, symbol: str) -> None:
        """Drop the book of ``symbol``."""
        self.views.pop(symbol, None)
        self.books.pop(symbol, None)
        self.versions.pop(symbol, None)

    def update(self, book: ConsolidatedBook) -> None:
        """Keep ``book`` unless the one held is newer."""
        current = self.books.get(book.symbol)
        if current is not None and (current.seq, current.ts_event) >= (book.seq, book.ts_event):
            return
        self.version += 1
        self.books[book.symbol] = book
        self.views[book.symbol] = consolidated_view(book)
        self.versions[book.symbol] = self.version

    def view(self, symbol: str, venue: str) -> BookView | None:
        """The current book of ``symbol`` as ``venue`` shows it, or None before any."""
        view = self.views.get(symbol)
        return None if view is None else venue_of(view, venue)

    def collect(self, subscription: Subscription) -> list[str]:
        """The message of each symbol whose book changed since the last one sent."""
        cursors = subscription.cursors
        items = []
        for symbol in subscription.symbols:
            version = self.versions.get(symbol)
            if version is None or version == cursors.get(symbol):
                continue
            cursors[symbol] = version
            message = publish(subscription, self.views[symbol])
            if message is not None:
                items.append(orjson.dumps(message).decode())
        return items


def publish(subscription: Subscription, view: BookView) -> dict[str, Any] | None:
    """The subscription's message for ``view`` (its symbol's new consolidated book), or None
    when its venue's top ``depth`` levels did not change."""
    publisher = subscription.publishers.get(view.symbol)
    if publisher is None:
        publisher = subscription.publishers[view.symbol] = BookPublisher(subscription.depth)
    return publisher.publish(venue_of(view, subscription.venue))


def replayed_items(subscription: Subscription) -> Callable[[ConsolidatedBook], Any]:
    """How a replayed consolidated book becomes an item of the subscription (None for one
    that changes nothing it shows): every book goes through the symbol's publisher, in order,
    so the replay is a snapshot then deltas like the live stream."""
    return lambda book: publish(subscription, consolidated_view(book))
