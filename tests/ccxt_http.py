"""A stand-in for the aiohttp session ccxt's async exchanges use, answering from recordings.

Set as ``exchange.session``, it lets ccxt's whole ``fetch`` run (throttling, status-code
mapping, JSON parsing, ``parse_*``) on recorded venue payloads instead of the network.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> str:
    """The text of a recorded payload under ``tests/fixtures``."""
    return (FIXTURES / name).read_text()


@dataclass
class Reply:
    """One HTTP answer; ``hang`` never answers, ``error`` is raised instead of answering."""

    body: str = ""
    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    hang: bool = False
    error: BaseException | None = None


class _Response:
    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.status = reply.status
        self.reason = "OK" if reply.status < 400 else "Error"
        self.headers = reply.headers

    async def text(self, errors: str = "strict") -> str:
        return self.reply.body

    async def __aenter__(self) -> _Response:
        if self.reply.hang:
            await asyncio.Event().wait()
        if self.reply.error is not None:
            raise self.reply.error
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


class RecordedSession:
    """Routes each request by the first path fragment it contains; counts requests."""

    def __init__(self, routes: dict[str, Reply | Callable[[str], Reply]]) -> None:
        self.routes = routes
        self.requests: list[str] = []
        self.headers: dict[str, str] = {}
        self.closed = False

    def get(self, url: object, **kwargs: object) -> _Response:
        text = str(url)
        self.requests.append(text)
        for fragment, reply in self.routes.items():
            if fragment in text:
                return _Response(reply(text) if callable(reply) else reply)
        return _Response(Reply(json.dumps({"code": -1121, "msg": "Invalid symbol."}), 400))

    post = get

    async def close(self) -> None:
        self.closed = True


def binance_routes() -> dict[str, Reply | Callable[[str], Reply]]:
    """Binance spot markets, 24 h tickers and aggregate trades as recorded."""
    return {
        "/api/v3/exchangeInfo": Reply(fixture("ccxt/binance_exchange_info.json")),
        "/api/v3/ticker/24hr": Reply(fixture("ccxt/binance_ticker_24hr.json")),
        "/api/v3/aggTrades": lambda url: Reply(
            fixture(
                "ccxt/binance_agg_trades_ethusdt.json"
                if "ETHUSDT" in url
                else "ccxt/binance_agg_trades_btcusdt.json"
            )
        ),
    }
