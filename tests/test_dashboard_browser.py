"""The dashboard at / in headless Chromium, against the real running system.

One system for the module: the session's broker, and synthetic ingest, arbitration, the
alerts worker and a gateway with API keys on, as processes. The page is driven like a person
would: it shows live prices, draws 1 s candles, subscribes an added symbol, plays a past
range and comes back after the gateway is killed and restarted.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import random
import signal
import string
import subprocess
import time
import typing
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import websockets
from playwright.async_api import BrowserContext, Page

from fiml.supervisor import COMMANDS, SERVICES
from gateway.app import create_app
from gateway.protocol import Timeframe
from runtime.processes import stop_process
from runtime.settings import Settings
from runtime.testing import free_port
from runtime.topics import create_topics
from tests.browser import chromium_context
from tests.support import service_env, spawn, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOT = ROOT / "test-artifacts" / "dashboard.png"
API_KEY = "dashboard-test-key"
SYMBOLS = ("AAPL", "BTC/USDT")
ADDED = "MSFT"
WAIT_MS = 20_000
TIMEFRAMES = list(typing.get_args(Timeframe))
REPLAY_FROM = 1
STALE_AFTER = 2.0
REPLAY_SECONDS = 10


@dataclasses.dataclass
class System:
    """The three services, their environment and where they log."""

    settings: Settings
    env: dict[str, str]
    services: dict[str, subprocess.Popen]
    logs: Path
    started: float
    """When the first price reached a client: replays may start from then on."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.gateway_port}"


async def first_data(url: str) -> None:
    """Wait until the gateway at ``url`` streams a first price."""
    async with websockets.connect(url) as ws, asyncio.timeout(60):
        await ws.send(
            json.dumps({"type": "subscribe", "stream_type": "price", "symbols": list(SYMBOLS)})
        )
        while json.loads(await ws.recv())["type"] != "data":
            pass


@pytest.fixture(scope="module")
async def system(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[System]:
    """Ingest, arbitration and a gateway that wants an API key, on topics of their own."""
    logs = tmp_path_factory.mktemp("dashboard")
    env = {key: value for key, value in os.environ.items() if not key.startswith("FIML_")}
    settings = Settings.from_env(
        env,
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=f"dash-{uuid.uuid4().hex[:10]}",
        partitions=3,
        gateway_port=free_port(),
        symbols=(*SYMBOLS, ADDED),
        synthetic_tick_hz=5.0,
        api_keys=(API_KEY,),
        stale_after_seconds=STALE_AFTER,
        synthetic_news_seconds=1.0,
    )
    await create_topics(settings)
    env = service_env(settings)
    running = System(
        settings,
        env,
        {name: spawn(COMMANDS.get(name, [name]), env, logs / f"{name}.log") for name in SERVICES},
        logs,
        started=0.0,
    )
    try:
        wait_for_port(settings.gateway_port, timeout=60)
        await first_data(f"ws://127.0.0.1:{settings.gateway_port}/ws/stream?api_key={API_KEY}")
        running.started = time.time()
        yield running
    finally:
        for process in reversed(list(running.services.values())):
            stop_process(process)
    for log in logs.glob("*.log"):
        text = log.read_text(errors="replace")
        assert "Traceback" not in text, f"{log.name} logged an exception:\n{text[-3000:]}"


@pytest.fixture(scope="module")
async def browser(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[BrowserContext]:
    async with chromium_context(tmp_path_factory.mktemp("chromium-profile")) as context:
        yield context


@pytest.fixture
async def page(browser: BrowserContext) -> AsyncIterator[Page]:
    opened = await browser.new_page()
    yield opened
    await opened.close()


async def open_dashboard(page: Page, system: System, query: str) -> None:
    """Load the page with the key in the address (the page moves it out of the address)."""
    await page.goto(f"{system.url}/{query}&api_key={API_KEY}")
    await wait_connected(page)


async def wait_connected(page: Page) -> None:
    await page.wait_for_function(
        "document.getElementById('connection').dataset.state === 'connected'", timeout=WAIT_MS
    )


async def cell_text(page: Page, symbol: str, column: str) -> str:
    cell = page.locator(f"#watchlist-rows tr[data-symbol='{symbol}'] td.{column}")
    return await cell.inner_text()


async def wait_price_change(page: Page, symbol: str) -> tuple[str, str]:
    """Wait for a price of ``symbol``, then for a different one; return both."""
    row = f"#watchlist-rows tr[data-symbol='{symbol}'] td.price"
    await page.wait_for_function(
        f'/^[0-9]/.test(document.querySelector("{row}").textContent)', timeout=WAIT_MS
    )
    first = await page.locator(row).inner_text()
    await page.wait_for_function(
        f'document.querySelector("{row}").textContent !== {first!r}', timeout=WAIT_MS
    )
    return first, await page.locator(row).inner_text()


async def chart_number(page: Page, name: str) -> int:
    value = await page.locator("#chart").get_attribute(f"data-{name}")
    return int(value) if value else 0


async def test_without_a_key_the_page_says_so_and_connects_with_one(system, page):
    await page.goto(f"{system.url}/?symbols=AAPL")
    await page.wait_for_function(
        "document.getElementById('connection').dataset.state === 'unauthorized'", timeout=WAIT_MS
    )
    await page.fill("#key-form input[name=key]", API_KEY)
    await page.click("#key-form button")
    await wait_connected(page)
    first, second = await wait_price_change(page, "AAPL")
    assert first != second


async def test_the_watchlist_shows_live_prices_that_change(system, page):
    await open_dashboard(page, system, "?symbols=AAPL,BTC/USDT&symbol=AAPL&tf=1s")
    assert "api_key" not in page.url, "the key stayed in the address bar"
    assert page.url.endswith("?symbols=AAPL,BTC/USDT&symbol=AAPL&tf=1s")
    for symbol in SYMBOLS:
        first, second = await wait_price_change(page, symbol)
        assert float(first) > 0 and float(second) > 0 and first != second
        assert (await cell_text(page, symbol, "provider")).startswith("synthetic:")
        assert 0 < float(await cell_text(page, symbol, "confidence")) <= 1
        assert await cell_text(page, symbol, "state") == "live"
    drives = page.locator("#provider-table tr.drives td.provider")
    await drives.wait_for(timeout=WAIT_MS)
    assert (await drives.inner_text()) == await cell_text(page, "AAPL", "provider")


async def test_the_chart_draws_candles_and_a_new_one_when_a_1s_candle_closes(system, page):
    await open_dashboard(page, system, "?symbols=AAPL,BTC/USDT&symbol=BTC/USDT&tf=1s")
    await page.wait_for_function(
        "document.getElementById('chart').dataset.closed >= 2", timeout=WAIT_MS
    )
    closed = await chart_number(page, "last-closed-time")
    newest = await chart_number(page, "last-time")
    assert closed < newest, "the newest candle should still be forming"
    await page.wait_for_function(
        f"Number(document.getElementById('chart').dataset.lastClosedTime) > {closed}"
        f" && Number(document.getElementById('chart').dataset.lastTime) > {newest}",
        timeout=WAIT_MS,
    )
    assert await page.locator("#chart canvas").count() > 0


async def news_ids(page: Page) -> set[str]:
    return set(
        await page.locator("#news-list li").evaluate_all("items => items.map(i => i.dataset.id)")
    )


async def test_the_news_panel_shows_the_stories_of_the_selected_symbol(system, page):
    await open_dashboard(page, system, "?symbols=AAPL,BTC/USDT&symbol=AAPL&tf=1s")
    count = "document.querySelectorAll('#news-list li').length"
    await page.wait_for_function(f"{count} >= 2", timeout=WAIT_MS)
    headers = {"X-API-Key": API_KEY}
    async with httpx.AsyncClient(base_url=system.url, timeout=10, headers=headers) as client:

        async def stories(symbol: str) -> set[str]:
            query = {"symbols": symbol, "start": "2000-01-01T00:00:00Z", "limit": 1000}
            answer = await client.get("/v1/news", params=query)
            assert answer.status_code == 200, answer.text
            return {item["id"] for item in answer.json()["items"]}

        assert await news_ids(page) <= await stories("AAPL")
        await page.click("#watchlist-rows tr[data-symbol='BTC/USDT'] td.symbol")
        await page.wait_for_function(
            "document.getElementById('news-title').textContent === 'BTC/USDT'", timeout=WAIT_MS
        )
        await page.wait_for_function(f"{count} >= 1", timeout=WAIT_MS)
        shown = await news_ids(page)
        assert shown <= await stories("BTC/USDT")
        assert not shown & (await stories("AAPL") - await stories("BTC/USDT"))


async def test_the_order_book_ladder_and_depth_chart_follow_the_crypto_symbol(system, page):
    await open_dashboard(page, system, "?symbols=AAPL,BTC/USDT&symbol=BTC/USDT&tf=1s")
    seq = "Number(document.getElementById('book').dataset.seq)"
    await page.wait_for_function(f"{seq} >= 1", timeout=WAIT_MS)
    first = int(await page.locator("#book").get_attribute("data-seq"))
    await page.wait_for_function(f"{seq} >= {first + 3}", timeout=WAIT_MS)
    assert await page.locator("#book").get_attribute("data-desyncs") is None
    headers = await page.locator("#book-ladder thead th").all_inner_texts()
    assert headers == ["side", "price", "size", "alpha", "beta", "gamma"]
    rows = await page.locator("#book-ladder tbody tr").all()
    assert len(rows) == 20
    sides = []
    for row in rows:
        cells = await row.locator("td").all_inner_texts()
        sides.append(cells[0])
        sizes = [Decimal(size) for size in cells[3:] if size]
        assert sizes and sum(sizes) == Decimal(cells[2]), cells
    assert sides == ["ask"] * 10 + ["bid"] * 10
    assert await page.locator("#book-depth polyline").count() == 2
    await page.click("#watchlist-rows tr[data-symbol='AAPL'] td.symbol")
    await page.wait_for_function("document.getElementById('book').hidden", timeout=WAIT_MS)


async def test_adding_a_symbol_subscribes_it_and_the_link_keeps_it(system, page):
    await open_dashboard(page, system, "?symbols=AAPL&symbol=AAPL&tf=1s")
    await page.fill("#add-form input[name=symbol]", ADDED.lower())
    await page.press("#add-form input[name=symbol]", "Enter")
    first, second = await wait_price_change(page, ADDED)
    assert first != second
    assert page.url.endswith(f"?symbols=AAPL,{ADDED}&symbol=AAPL&tf=1s")
    await page.reload()
    await wait_price_change(page, ADDED)
    await page.click(f"#watchlist-rows tr[data-symbol='{ADDED}'] button.remove")
    assert await page.locator(f"#watchlist-rows tr[data-symbol='{ADDED}']").count() == 0
    assert page.url.endswith("?symbols=AAPL&symbol=AAPL&tf=1s")


async def test_an_alert_made_from_the_watchlist_arrives_on_the_page(system, page):
    await open_dashboard(page, system, "?symbols=AAPL&symbol=AAPL&tf=1s")
    await page.select_option("#alert-form select[name=kind]", "price_above")
    await page.fill("#alert-form input[name=level]", "1")
    await page.click("#alert-form button")
    await page.wait_for_function(
        "document.getElementById('alert-note').textContent.includes('created')", timeout=WAIT_MS
    )
    note = await page.locator("#alert-note").inner_text()
    assert "price_above 1 on AAPL" in note
    fired = page.locator("#alert-list li").first
    await fired.wait_for(timeout=WAIT_MS)
    assert (await fired.inner_text()).split(" ", 2)[1] == "AAPL:"
    await page.fill("#alert-form input[name=level]", "0")
    await page.click("#alert-form button")
    assert "level above 0" in await page.locator("#alert-note").inner_text()


async def test_the_replay_control_plays_a_past_range_and_returns_to_live(system, page):
    await open_dashboard(page, system, "?symbols=AAPL,BTC/USDT&symbol=AAPL&tf=1s")
    await wait_price_change(page, "AAPL")
    start = system.started + REPLAY_FROM
    await asyncio.sleep(max(0.0, start + REPLAY_SECONDS + 2 - time.time()))
    end = time.time() - 2
    moment = lambda t: datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S")  # noqa: E731
    await page.fill("#replay-form input[name=from]", moment(start))
    await page.fill("#replay-form input[name=to]", moment(end))
    await page.select_option("#replay-form select[name=speed]", "10")
    await page.click("#replay-play")
    await page.wait_for_function(
        "document.getElementById('replay-status').dataset.state === 'complete'", timeout=WAIT_MS
    )
    assert await cell_text(page, "AAPL", "state") == "replay"
    replayed_at = await cell_text(page, "AAPL", "updated")
    assert moment(start)[11:] <= replayed_at <= moment(end + 1)[11:]
    assert await chart_number(page, "candles") >= 5
    assert int(start) <= await chart_number(page, "last-time") <= end + 1

    await page.click("#replay-live")
    await page.wait_for_function(
        "document.querySelector(\"#watchlist-rows tr[data-symbol='AAPL']\").dataset.state"
        " === 'live'",
        timeout=WAIT_MS,
    )
    await page.wait_for_function(
        f"Number(document.getElementById('chart').dataset.lastTime) > {end + 1}", timeout=WAIT_MS
    )


async def test_a_paused_feed_shows_stale_and_then_live_again(system, page):
    """Ingest stopped with SIGSTOP: no quotes, so the gateway's status says stale."""
    await open_dashboard(page, system, "?symbols=AAPL&symbol=AAPL&tf=1s")
    await wait_price_change(page, "AAPL")
    ingest = system.services["ingest"]
    row_state = "document.querySelector(\"#watchlist-rows tr[data-symbol='AAPL']\").dataset.state"
    badge_state = "document.getElementById('connection').dataset.state"
    os.kill(ingest.pid, signal.SIGSTOP)
    try:
        await page.wait_for_function(
            f"{row_state} === 'stale' && {badge_state} === 'stale'", timeout=WAIT_MS
        )
    finally:
        os.kill(ingest.pid, signal.SIGCONT)
    await page.wait_for_function(
        f"{row_state} === 'live' && {badge_state} === 'connected'", timeout=WAIT_MS
    )


async def test_a_killed_and_restarted_gateway_ends_in_a_reconnected_updating_page(system, page):
    await open_dashboard(page, system, f"?symbols=AAPL,{ADDED},BTC/USDT&symbol=BTC/USDT&tf=1s")
    await wait_price_change(page, "BTC/USDT")
    gateway = system.services["gateway"]
    os.kill(gateway.pid, signal.SIGKILL)
    gateway.wait()
    await page.wait_for_function(
        "document.getElementById('connection').dataset.state === 'reconnecting'", timeout=WAIT_MS
    )
    system.services["gateway"] = spawn(["gateway"], system.env, system.logs / "gateway-2.log")
    await asyncio.to_thread(wait_for_port, system.settings.gateway_port, 60)
    await page.wait_for_function(
        "document.getElementById('connection').dataset.state === 'connected'", timeout=30_000
    )
    last = await chart_number(page, "last-time")
    first, second = await wait_price_change(page, "BTC/USDT")
    assert first != second
    await page.wait_for_function(
        f"Number(document.getElementById('chart').dataset.lastTime) > {last}", timeout=WAIT_MS
    )
    SCREENSHOT.parent.mkdir(exist_ok=True)
    await page.screenshot(path=SCREENSHOT)


def views(count: int) -> list[dict]:
    """Watchlist views of canonical symbols (tickers, pairs, indices, futures)."""
    rng = random.Random(7)
    part = lambda: "".join(  # noqa: E731
        rng.choices(
            string.ascii_uppercase + string.digits + ".-",
            k=rng.randint(0, 4),
        )
    )
    shapes = [
        lambda: rng.choice(string.ascii_uppercase) + part(),
        lambda: f"{rng.choice(string.ascii_uppercase)}{part()}/USDT",
        lambda: f"^{rng.choice(string.ascii_uppercase)}{part()}",
        lambda: f"{rng.choice(string.ascii_uppercase)}{part()}=F",
    ]
    found = []
    for _ in range(count):
        symbols = list(dict.fromkeys(rng.choice(shapes)() for _ in range(rng.randint(0, 6))))
        found.append(
            {
                "symbols": symbols,
                "selected": rng.choice(symbols) if symbols else None,
                "timeframe": rng.choice(TIMEFRAMES),
            }
        )
    return found


async def test_the_pure_modules_round_trip_views_and_bound_the_backoff(system, page):
    """view-state.js, connection.js and replay.js in the page itself, on many inputs."""
    await page.goto(f"{system.url}/healthz")
    failures = await page.evaluate(
        """async (views) => {
        const state = await import("/dashboard/view-state.js");
        const { backoffDelay } = await import("/dashboard/connection.js");
        const { utcInputToIso, isoToUtcInput } = await import("/dashboard/replay.js");
        const failures = [];
        for (const view of views) {
            const back = state.readView(state.writeView(view));
            if (JSON.stringify(back) !== JSON.stringify(view)) failures.push([view, back]);
        }
        for (let attempt = 0; attempt < 12; attempt++) {
            const full = Math.min(8000, 500 * 2 ** attempt);
            for (const r of [0, 0.5, 0.999]) {
                const delay = backoffDelay(attempt, () => r);
                if (delay < 0.75 * full || delay > 1.25 * full) failures.push([attempt, r]);
            }
        }
        const at = Date.UTC(2026, 10, 26, 15, 4, 5);
        if (utcInputToIso(isoToUtcInput(at)) !== new Date(at).toISOString()) failures.push("utc");
        return failures;
    }""",
        views(300),
    )
    assert failures == []


async def test_the_page_and_its_chart_library_are_served_without_a_key(system):
    async with httpx.AsyncClient(base_url=system.url, timeout=10) as client:
        for path in ("/", "/dashboard/main.js", "/dashboard/style.css"):
            assert (await client.get(path)).status_code == 200, path
        library = await client.get("/dashboard/vendor/lightweight-charts.mjs")
        assert library.status_code == 200
        assert library.headers["content-type"].startswith("text/javascript")
        assert "createChart" in library.text


async def test_a_missing_chart_library_is_named_in_the_log_and_in_the_answer(tmp_path, caplog):
    missing = tmp_path / "lightweight-charts.mjs"
    settings = Settings.from_env({}, dashboard_chart_library=str(missing))
    with caplog.at_level(logging.WARNING, logger="fiml.gateway.dashboard"):
        app = create_app(settings)
    assert f"missing at {missing}: run `make dashboard-assets`" in caplog.text
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        answer = await client.get("/dashboard/vendor/lightweight-charts.mjs")
        assert answer.status_code == 404
        assert "make dashboard-assets" in answer.text
        assert (await client.get("/")).status_code == 200
