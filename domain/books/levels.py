"""One side of an L2 book, and the decimal texts of its prices and sizes.

A level is ``(price, size)`` as the venue wrote them, plain decimal text. A side keeps its
levels best first (sorted by a float key: the price for asks, minus the price for bids) and
an optional *horizon*: the key of the worst price it knows exactly. Beyond the horizon the
venue may have levels the side has never seen, so updates there are ignored.
"""

from __future__ import annotations

import functools
from bisect import bisect_left, insort
from collections.abc import Iterable
from decimal import Decimal

Level = tuple[str, str]
INFINITY = float("inf")


class MalformedLevel(ValueError):
    """A level whose price or size is not plain decimal text, or a price that is not positive."""


def number(text: str) -> float:
    """The value of plain decimal ``text`` (ASCII digits, at most one point); raises
    MalformedLevel for anything else (signs, exponents, ``nan``, spaces, underscores)."""
    if type(text) is str and text.isascii() and text.replace(".", "", 1).isdigit():
        value = float(text)
        if value < INFINITY:
            return value
    raise MalformedLevel(f"not a plain decimal number: {text!r}")


@functools.lru_cache(maxsize=65_536)
def plain(text: str) -> str:
    """``text`` without leading zeros before the units or trailing zeros after the point."""
    whole, _, fraction = text.partition(".")
    whole = whole.lstrip("0") or "0"
    fraction = fraction.rstrip("0")
    return f"{whole}.{fraction}" if fraction else whole


def decimal_plain(value: Decimal) -> str:
    """The plain text of a Decimal, e.g. ``Decimal("1.500")`` -> ``"1.5"``."""
    return plain(format(value, "f"))


def decimals(text: str) -> int:
    """Digits after the point of plain ``text``."""
    point = text.find(".")
    return 0 if point < 0 else len(text) - point - 1


def fixed(text: str, places: int) -> str:
    """Plain ``text`` written with exactly ``places`` decimals (it has at most that many)."""
    if places == 0:
        return text
    whole, _, fraction = text.partition(".")
    return f"{whole}.{fraction.ljust(places, '0')}"


class Side:
    """The levels of one side, best first, with the horizon beyond which nothing is known."""

    __slots__ = ("horizon", "keys", "levels", "sign")

    def __init__(self, bids: bool) -> None:
        self.sign = -1.0 if bids else 1.0
        self.keys: list[float] = []
        self.levels: dict[float, Level] = {}
        self.horizon: float | None = None

    def __len__(self) -> int:
        return len(self.keys)

    def clear(self) -> None:
        """Forget every level and the horizon."""
        self.keys.clear()
        self.levels.clear()
        self.horizon = None

    def put(self, price: str, size: str) -> None:
        """Set the size at ``price``, a zero size deleting the level; ignored beyond the horizon.

        Raises MalformedLevel for text that is not a plain decimal or a price that is not
        positive.
        """
        value = number(price)
        if value <= 0:
            raise MalformedLevel(f"price {price!r} is not positive")
        key = self.sign * value
        amount = number(size)
        if self.horizon is not None and key > self.horizon:
            return
        levels = self.levels
        if amount == 0:
            if levels.pop(key, None) is not None:
                del self.keys[bisect_left(self.keys, key)]
            return
        if key not in levels:
            insort(self.keys, key)
        levels[key] = (price, size)

    def put_all(self, levels: Iterable[list[str]]) -> None:
        """:meth:`put` each ``[price, size]``; raises MalformedLevel for any other shape."""
        for level in levels:
            if len(level) != 2:
                raise MalformedLevel(f"a level is [price, size], got {level!r}")
            self.put(level[0], level[1])

    def truncate(self, count: int) -> bool:
        """Keep the best ``count`` levels; True if any was dropped."""
        keys = self.keys
        if len(keys) <= count:
            return False
        levels = self.levels
        for key in keys[count:]:
            del levels[key]
        del keys[count:]
        return True

    def top(self, count: int) -> list[Level]:
        """The best ``count`` levels, best first."""
        levels = self.levels
        return [levels[key] for key in self.keys[:count]]
