"""Dashboard load time in headless Chromium, against a baseline page of the same gateway.

``python benchmarks/dashboard_load.py [--loads N] [--out FILE]`` runs synthetic ingest,
arbitration and a gateway on a broker, then opens the dashboard ``N`` times, each in a fresh
browser profile (cold cache). Per load, in milliseconds from navigation start: the load event
(every module and the chart library fetched and run), the chart drawn (a first candle), the
first price in the watchlist; and, as the baseline, the load event of ``/healthz`` opened
first in the same profile.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import uuid
from pathlib import Path

from harness import ROOT, percentiles, run_and_report, run_facts, spawn_service
from replay_throughput import wait_ready

from runtime.processes import stop_process
from runtime.settings import Settings
from runtime.testing import free_port
from runtime.topics import create_topics

sys.path.insert(0, str(ROOT))  # the tests' Chromium launcher: one place says how to start it
from tests.browser import chromium_context

SYMBOLS = ("AAPL", "MSFT", "NVDA", "BTC/USDT", "ETH/USDT")
QUERY = "?symbols=AAPL,MSFT,NVDA,BTC/USDT,ETH/USDT&symbol=BTC/USDT&tf=1m"
LOAD_EVENT = "performance.getEntriesByType('navigation')[0].loadEventEnd"
# Checked in the page every 5 ms, so no round trip to the browser adds to a time.
MARKS = """
window.benchmarkMarks = {};
const marks = window.benchmarkMarks;
const poll = setInterval(() => {
  const chart = document.getElementById("chart");
  const price = document.querySelector("#watchlist-rows tr[data-symbol='AAPL'] td.price");
  if (!marks.chart && chart && Number(chart.dataset.candles) > 0) marks.chart = performance.now();
  if (!marks.price && price && /^[0-9]/.test(price.textContent)) marks.price = performance.now();
  if (marks.chart && marks.price) clearInterval(poll);
}, 5);
"""


async def one_load(url: str, profile: Path) -> dict[str, float]:
    """Milliseconds of one cold load: baseline, load event, chart drawn, first price."""
    async with chromium_context(profile) as context:
        page = await context.new_page()
        await page.goto(f"{url}/healthz")
        baseline = await page.evaluate(LOAD_EVENT)
        await page.add_init_script(MARKS)
        await page.goto(f"{url}/{QUERY}", wait_until="load")
        loaded = await page.evaluate(LOAD_EVENT)
        await page.wait_for_function("benchmarkMarks.chart && benchmarkMarks.price", timeout=30_000)
        marks = await page.evaluate("benchmarkMarks")
        return {"baseline": baseline, "load": loaded, **marks}


async def measure(bootstrap: str, loads: int, tmp: Path) -> dict:
    settings = Settings.from_env(
        {},
        kafka_bootstrap=bootstrap,
        gateway_port=free_port(),
        topic_prefix=f"bench-dash-{uuid.uuid4().hex[:8]}",
        symbols=SYMBOLS,
    )
    await create_topics(settings)
    services = [
        spawn_service(settings, name, tmp / f"{name}.log")
        for name in ("ingest", "arbitrate", "gateway")
    ]
    try:
        await wait_ready(settings.gateway_port)
        await asyncio.sleep(10)  # a few 1m candle revisions and quotes exist before the first load
        url = f"http://127.0.0.1:{settings.gateway_port}"
        runs = []
        for _ in range(loads):
            with tempfile.TemporaryDirectory(dir=tmp) as profile:
                runs.append(await one_load(url, Path(profile)))
    finally:
        for service in reversed(services):
            stop_process(service)
    result = {**run_facts(), "loads": loads}
    for key in ("baseline", "load", "chart", "price"):
        result[f"{key}_ms"] = {
            "median": round(statistics.median(r[key] for r in runs), 1),
            **percentiles([r[key] for r in runs], (0, 100)),
        }
    result["load_over_baseline"] = round(
        result["load_ms"]["median"] / result["baseline_ms"]["median"], 2
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", type=int, default=5, help="cold loads of the page")
    parser.add_argument("--out", type=Path, help="write the JSON result here too")
    args = parser.parse_args()
    run_and_report(measure, args.loads, args.out)


if __name__ == "__main__":
    main()
