"""Candle revisions folded to one row per bucket, a page at a time, for REST history (pure).

Every revision of a bucket carries its open time; the engine writes a bucket's revisions in
order and closes buckets in open-time order, so the revisions of a few neighbouring buckets
interleave in the log. A :class:`BucketPage` keeps the latest revision of each bucket read
and releases buckets into its rows in open-time order: a closed one (with every earlier
bucket still held) as soon as its final revision is read, the rest once the range has been
read to its end. A full page says where the next one resumes: at the first revision of
every bucket still held, taking only buckets after the last one released.
"""

from __future__ import annotations

from schemas.records import Candle


class BucketPage:
    """Up to ``limit`` buckets after the bucket ``after`` (an open time), being read."""

    def __init__(self, limit: int, after: int | None = None) -> None:
        self.limit = limit
        self.after = after
        self.rows: list[Candle] = []
        self._held: dict[int, tuple[Candle, int, int]] = {}

    def add(self, candle: Candle, partition: int, offset: int) -> bool:
        """Take one revision read at ``partition``/``offset``; True once the page is full."""
        if self.after is not None and candle.open_time <= self.after:
            return False
        held = self._held.get(candle.open_time)
        first = offset if held is None else held[2]
        self._held[candle.open_time] = (candle, partition, first)
        return candle.is_closed and self._release(candle.open_time)

    def finish(self) -> bool:
        """The range was read to its end: release what is held; True if the page filled
        before all of it went out."""
        return self._release(None)

    def resume_offsets(self) -> dict[int, int]:
        """Per partition, the offset of the first revision of a bucket still held."""
        offsets: dict[int, int] = {}
        for _, partition, first in self._held.values():
            offsets[partition] = min(first, offsets.get(partition, first))
        return offsets

    def _release(self, until: int | None) -> bool:
        for open_time in sorted(self._held):
            if until is not None and open_time > until:
                break
            if len(self.rows) == self.limit:
                return True
            self.rows.append(self._held.pop(open_time)[0])
            self.after = open_time
        return False
