"""Canonical symbols: what every topic key and every client message uses.

Equities, ETFs and indices are Yahoo-style tickers (``AAPL``, ``BRK-B``, ``^GSPC``), crypto is
``BASE/QUOTE`` (``BTC/USDT``), forex ``EUR/USD``, futures and commodities Yahoo tickers
(``GC=F``). Providers map to and from their own forms.
"""

from __future__ import annotations

import re

MAX_SYMBOL_LENGTH = 32
_TICKER = re.compile(r"\^?[A-Z0-9][A-Z0-9.\-]*(=[A-Z])?")
_PAIR_SIDE = re.compile(r"[A-Z0-9][A-Z0-9.\-]*")


class InvalidSymbol(ValueError):
    """Text that cannot be a canonical symbol; the message says why."""


def canonical_symbol(text: str) -> str:
    """Return the canonical form of ``text`` (trimmed, upper case) or raise InvalidSymbol."""
    if not isinstance(text, str):
        raise InvalidSymbol(f"a symbol must be a string, got {type(text).__name__}")
    symbol = text.strip().upper()
    if not symbol:
        raise InvalidSymbol("empty symbol")
    if len(symbol) > MAX_SYMBOL_LENGTH:
        raise InvalidSymbol(f"symbol longer than {MAX_SYMBOL_LENGTH} characters: {symbol[:40]!r}")
    if "/" in symbol:
        base, _, quote = symbol.partition("/")
        if _PAIR_SIDE.fullmatch(base) and _PAIR_SIDE.fullmatch(quote):
            return symbol
        raise InvalidSymbol(f"invalid pair {symbol!r}: expected BASE/QUOTE such as BTC/USDT")
    if _TICKER.fullmatch(symbol):
        return symbol
    raise InvalidSymbol(f"invalid symbol {symbol!r}: expected a ticker such as AAPL or BTC/USDT")
