"""The L2 book of one venue for one symbol, kept by the venue's continuity rules.

:meth:`VenueBook.apply` takes the venue's book events in log order and says what it did
(:class:`Outcome`). A snapshot replaces the book. A delta applies only if it follows the
book by the venue's sequence rule, and the result must match the venue's checksum when the
message carries one. A gap, a checksum mismatch, a malformed level or a book too thin to
trust empties the book and marks it invalid until the next snapshot: an invalid book shows
no levels, so a corrupted book is never exposed.

Depth. The book is kept to show ``depth`` levels per side (default 50). A windowed feed's
book keeps the venue's whole window (the snapshot's ``depth``, at most ``MAX_LEVELS``), which
the venue maintains. Any other book keeps a reserve of ``RESERVE * depth`` levels per side
(at least the levels the venue's checksum covers). When a side drops levels beyond what it
keeps, or a snapshot of a full-depth feed fills the ``depth`` it was asked for (a REST
snapshot's limit: the venue has more), the side's *horizon* is set at its worst kept price:
updates beyond it are ignored, since levels between would be unknown, so every level kept
stays exactly the venue's. Deletions thin such a side; once it holds fewer than its *floor*
(``depth``, or the checksum's levels if more, never more than the snapshot left it) the book
asks for a fresh snapshot (``DEPTH``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from domain.books import continuity
from domain.books.checksums import kraken_checksum, okx_checksum
from domain.books.continuity import ChecksumRule, FeedRules, Verdict
from domain.books.levels import Level, MalformedLevel, Side
from schemas.books import SNAPSHOT, BookEvent

DEFAULT_DEPTH = 50
RESERVE = 4
MAX_LEVELS = 1000


class Outcome(StrEnum):
    """What applying one book event did."""

    APPLIED = "applied"
    STALE = "stale"
    WAITING = "waiting"
    GAP = "gap"
    CHECKSUM = "checksum"
    DEPTH = "depth"
    MALFORMED = "malformed"


FAILURES = frozenset({Outcome.GAP, Outcome.CHECKSUM, Outcome.DEPTH, Outcome.MALFORMED})


@dataclass(frozen=True, slots=True)
class Result:
    """The outcome of one event and, for a failure, why."""

    outcome: Outcome
    detail: str = ""


APPLIED = Result(Outcome.APPLIED)


class VenueBook:
    """One venue's L2 book of one symbol."""

    __slots__ = (
        "asks",
        "bids",
        "capacity",
        "depth",
        "floors",
        "last_id",
        "rules",
        "synced",
        "ts_event",
        "valid",
        "window",
    )

    def __init__(self, rules: FeedRules, depth: int = DEFAULT_DEPTH) -> None:
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        self.rules = rules
        self.depth = depth
        self.capacity = depth
        self.bids = Side(bids=True)
        self.asks = Side(bids=False)
        self.valid = False
        self.synced = False
        self.last_id: int | None = None
        self.window: int | None = None
        self.floors = (0, 0)
        self.ts_event = 0

    def apply(self, event: BookEvent) -> Result:
        """Apply one event of this venue and symbol; see the module docstring."""
        if event.kind == SNAPSHOT:
            return self._snapshot(event)
        if not self.valid:
            return Result(Outcome.WAITING, "no valid snapshot yet")
        verdict = continuity.check_sequence(self.rules.sequence, self.last_id, self.synced, event)
        if verdict is Verdict.STALE:
            return Result(Outcome.STALE)
        if verdict is Verdict.GAP:
            return self._fail(
                Outcome.GAP,
                f"update ids {event.first_update_id}.."
                f"{event.last_update_id} (previous {event.prev_update_id}) do "
                f"not follow {self.last_id}",
            )
        try:
            self.bids.put_all(event.bids)
            self.asks.put_all(event.asks)
        except MalformedLevel as error:
            return self._fail(Outcome.MALFORMED, str(error))
        self.last_id = event.last_update_id
        self.synced = True
        self.ts_event = max(self.ts_event, event.ts_event)
        return self._settle(event)

    def top(self, count: int) -> tuple[list[Level], list[Level]]:
        """The best ``count`` bids and asks, best first; nothing while invalid."""
        return self.bids.top(count), self.asks.top(count)

    def edge(self, side: Side) -> float | None:
        """The key of the worst price of ``side`` the book knows the venue's size at and
        beyond which the venue may have levels: its horizon, or the last level of a full
        window; None when the side shows the venue's whole book."""
        if side.horizon is not None:
            return side.horizon
        if self.window is not None and len(side) >= self.window:
            return side.keys[-1]
        return None

    def _snapshot(self, event: BookEvent) -> Result:
        self.bids.clear()
        self.asks.clear()
        self.window = event.depth if self.rules.windowed else None
        self.capacity = self._capacity()
        try:
            self.bids.put_all(event.bids)
            self.asks.put_all(event.asks)
        except MalformedLevel as error:
            return self._fail(Outcome.MALFORMED, str(error))
        if event.depth is not None and not self.rules.windowed:
            for side in (self.bids, self.asks):
                if side.keys and len(side) >= event.depth:
                    side.horizon = side.keys[-1]
        self._truncate()
        self.floors = (self._floor(len(self.bids)), self._floor(len(self.asks)))
        self.valid = True
        self.synced = False
        self.last_id = event.last_update_id
        self.ts_event = event.ts_event
        return self._verify(event)

    def _settle(self, event: BookEvent) -> Result:
        self._truncate()
        for side, floor, name in (
            (self.bids, self.floors[0], "bids"),
            (self.asks, self.floors[1], "asks"),
        ):
            if side.horizon is not None and len(side) < floor:
                return self._fail(
                    Outcome.DEPTH,
                    f"{name} thinned to {len(side)} levels below the horizon, fewer than {floor}",
                )
        return self._verify(event)

    def _truncate(self) -> None:
        for side in (self.bids, self.asks):
            if self.window is not None and self.window <= self.capacity:
                side.truncate(self.window)
            elif side.truncate(self.capacity):
                side.horizon = side.keys[-1]

    def _capacity(self) -> int:
        floor = max(self.depth, self.rules.checksum_levels)
        if self.window is not None:
            return max(floor, min(self.window, MAX_LEVELS))
        return max(RESERVE * self.depth, floor)

    def _floor(self, count: int) -> int:
        return min(count, max(self.depth, self.rules.checksum_levels))

    def _verify(self, event: BookEvent) -> Result:
        expected = event.checksum
        rule = self.rules.checksum
        if expected is None or rule is ChecksumRule.NONE:
            return APPLIED
        levels = self.rules.checksum_levels
        bids, asks = self.bids.top(levels), self.asks.top(levels)
        actual = (
            kraken_checksum(asks, bids) if rule is ChecksumRule.KRAKEN else okx_checksum(bids, asks)
        )
        if actual != expected:
            return self._fail(
                Outcome.CHECKSUM,
                f"{rule} checksum {actual} != the venue's "
                f"{expected} after update {event.last_update_id}",
            )
        return APPLIED

    def _fail(self, outcome: Outcome, detail: str) -> Result:
        self.bids.clear()
        self.asks.clear()
        self.valid = False
        self.synced = False
        return Result(outcome, detail)
