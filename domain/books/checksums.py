"""The CRC32 book checksums of Kraken and OKX, over the levels' decimal text.

Both take the levels of each side best first, as ``(price, size, ...)`` text.

- Kraken (WebSocket v2 ``book``): the top ``levels`` asks, then the top ``levels`` bids; for
  each level its price then its size, each written at the pair's precision with the point
  removed and leading zeros stripped; all concatenated; unsigned CRC32.
- OKX (``books``): the top 25 bids and asks interleaved (bid, ask, bid, ask, ...; a side that
  runs out is skipped) as ``price:size`` joined by ``:``, with the text exactly as sent;
  CRC32 as a signed 32-bit integer.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

KRAKEN_LEVELS = 10
OKX_LEVELS = 25


def kraken_digits(level: Sequence[str]) -> str:
    """One level's part of Kraken's checksum: price then size, without point or leading zeros."""
    return level[0].replace(".", "").lstrip("0") + level[1].replace(".", "").lstrip("0")


def kraken_checksum(
    asks: Sequence[Sequence[str]], bids: Sequence[Sequence[str]], levels: int = KRAKEN_LEVELS
) -> int:
    """Kraken's checksum of the top ``levels`` of each side."""
    parts = [kraken_digits(level) for side in (asks, bids) for level in side[:levels]]
    return zlib.crc32("".join(parts).encode())


def okx_checksum(bids: Sequence[Sequence[str]], asks: Sequence[Sequence[str]]) -> int:
    """OKX's checksum of the top 25 levels of each side."""
    parts: list[str] = []
    for index in range(OKX_LEVELS):
        for side in (bids, asks):
            if index < len(side):
                parts.append(f"{side[index][0]}:{side[index][1]}")
    crc = zlib.crc32(":".join(parts).encode())
    return crc - (1 << 32) if crc >= 1 << 31 else crc
