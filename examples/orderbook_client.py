"""Follow the consolidated order book of BTC/USDT and verify every message's seq and checksum.

Usage: python examples/orderbook_client.py [ws://127.0.0.1:8000/ws/stream] [SYMBOL]

The book is rebuilt from a snapshot and deltas (docs/protocol.md, "Order books"); a lost
message or a checksum that does not match resubscribes for a fresh snapshot.
"""

import asyncio
import json
import sys
import zlib

import websockets

DEFAULT_URI = "ws://localhost:8000/ws/stream"


class Desync(Exception):
    """A seq gap or a checksum mismatch: the book must start again from a snapshot."""


def digits(level):
    """A level's part of the checksum: price then size, no point, no leading zeros."""
    return level[0].replace(".", "").lstrip("0") + level[1].replace(".", "").lstrip("0")


class Book:
    """One symbol's book as the stream sent it; ``apply`` raises Desync when it cannot follow."""

    def __init__(self):
        self.seq = None
        self.venues = []
        self.bids, self.asks = {}, {}

    def apply(self, item):
        if item["action"] == "snapshot":
            self.bids, self.asks = {}, {}
            self.venues = item.get("venues", [])
        elif self.seq is None or item["seq"] != self.seq + 1:
            raise Desync(f"seq {item['seq']} after {self.seq}")
        self.seq = item["seq"]
        for side, levels in ((self.bids, item["bids"]), (self.asks, item["asks"])):
            for level in levels:
                if float(level[1]) == 0:
                    side.pop(level[0], None)
                else:
                    side[level[0]] = level
        bids, asks = self.levels()
        for side, ordered in ((self.bids, bids), (self.asks, asks)):
            for level in ordered[item["depth"] :]:
                del side[level[0]]
        bids, asks = self.levels()
        text = "".join(digits(level) for level in asks[:10] + bids[:10])  # Kraken's top 10
        if zlib.crc32(text.encode()) != item["checksum"]:
            raise Desync(f"checksum mismatch at seq {self.seq}")

    def levels(self):
        """Bids and asks, best first."""
        return (
            sorted(self.bids.values(), key=lambda level: -float(level[0])),
            sorted(self.asks.values(), key=lambda level: float(level[0])),
        )


async def follow(uri=DEFAULT_URI, symbol="BTC/USDT"):
    subscribe = {
        "type": "subscribe",
        "stream_type": "orderbook",
        "symbols": [symbol],
        "depth": 10,
        "interval_ms": 500,
    }
    async with websockets.connect(uri) as websocket:
        await websocket.send(json.dumps(subscribe))
        book = Book()
        async for text in websocket:
            message = json.loads(text)
            if message["type"] != "data" or message["stream_type"] != "orderbook":
                continue
            for item in message["data"]:
                try:
                    book.apply(item)
                except Desync as error:
                    print(f"{error}: resubscribing for a snapshot")
                    book = Book()
                    leave = {"type": "unsubscribe", "stream_type": "orderbook", "symbols": [symbol]}
                    await websocket.send(json.dumps(leave))
                    await websocket.send(json.dumps(subscribe))
                    break
            bids, asks = book.levels()
            if bids and asks:
                print(
                    f"seq {book.seq}: best bid {bids[0][0]} x {bids[0][1]}, "
                    f"best ask {asks[0][0]} x {asks[0][1]}, venues {', '.join(book.venues)}"
                )


if __name__ == "__main__":
    asyncio.run(follow(*sys.argv[1:3]))
