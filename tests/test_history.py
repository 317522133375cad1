"""GET /v1/quotes and /v1/candles on a real server and broker: ranges, pages, errors."""

from __future__ import annotations

import asyncio
import dataclasses

import httpx
import pytest

from gateway.items import candle_item, quote_item
from runtime.clock import now_micros
from runtime.partitioning import key_partition
from runtime.testing import free_port
from schemas import Candle, Quote
from schemas.times import micros_to_iso
from tests.factories import BASE_US, quote, second_candle
from tests.support_gateway import serve_gateway
from tests.support_kafka import expire_oldest, ingest_ms, produce, read_topic

SYMBOLS = ("AAPL", "MSFT", "BTC/USDT")


async def all_pages(http: httpx.AsyncClient, url: str, params: dict) -> list[dict]:
    pages = []
    cursor = None
    while True:
        response = await http.get(url, params={**params, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.text
        pages.append(response.json())
        cursor = pages[-1]["next_cursor"]
        if cursor is None:
            return pages


async def test_quotes_come_in_pages_that_add_up_to_the_range(gateway):
    settings, port, _ = gateway
    await produce(
        settings,
        "quotes",
        [quote(SYMBOLS[n % 3], 100.0 + n, n * 1000) for n in range(90)],
        written_ms=ingest_ms,
    )
    stored = await read_topic(settings, "quotes", Quote)
    start, end = BASE_US + 3000, BASE_US + 80_000
    want = [
        quote_item(r)
        for _, _, r in sorted(stored, key=lambda x: (x[2].ts_event, x[0], x[1]))
        if r.symbol == "AAPL" and start <= r.ts_event <= end
    ]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        pages = await all_pages(
            http,
            "/v1/quotes/aapl",
            {"start": micros_to_iso(start), "end": micros_to_iso(end), "limit": 7},
        )
    assert len(want) == 26
    assert [len(page["items"]) for page in pages] == [7, 7, 7, 5]
    assert all(page["symbol"] == "AAPL" for page in pages)
    assert [item for page in pages for item in page["items"]] == want


async def test_candles_of_one_timeframe_with_a_slash_symbol(gateway):
    settings, port, _ = gateway
    written = [
        second_candle(n, 100.0 + n, 1, closed=True, timeframe=tf)
        for n in range(12)
        for tf in ("1s", "1m")
    ]
    await produce(settings, "candles", written, written_ms=ingest_ms)
    stored = await read_topic(settings, "candles", Candle)
    want = [
        candle_item(r)
        for _, _, r in sorted(stored, key=lambda x: (x[2].open_time, x[0], x[1]))
        if r.timeframe == "1s"
    ]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        pages = await all_pages(
            http,
            "/v1/candles/BTC/USDT",
            {
                "timeframe": "1s",
                "start": micros_to_iso(BASE_US),
                "end": micros_to_iso(BASE_US + 11_000_000),
                "limit": 5,
            },
        )
    assert [len(page["items"]) for page in pages] == [5, 5, 2]
    assert [item for page in pages for item in page["items"]] == want
    assert pages[0]["timeframe"] == "1s" and pages[0]["symbol"] == "BTC/USDT"


async def test_closed_only_candles_skip_the_revisions_of_forming_buckets(gateway):
    settings, port, _ = gateway
    written = [
        second_candle(n, 100.0 + n + revision, revision, closed=revision == 2, timeframe="5m")
        for n in range(8)
        for revision in range(3)
    ]
    await produce(settings, "candles", written, written_ms=ingest_ms)
    stored = await read_topic(settings, "candles", Candle)
    want = [
        candle_item(r)
        for _, _, r in sorted(stored, key=lambda x: (x[2].open_time, x[0], x[1]))
        if r.timeframe == "5m" and r.is_closed
    ]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        pages = await all_pages(
            http,
            "/v1/candles/BTC/USDT",
            {
                "timeframe": "5m",
                "start": micros_to_iso(BASE_US),
                "end": micros_to_iso(BASE_US + 11_000_000),
                "limit": 3,
                "closed": "true",
            },
        )
    assert len(want) == 8
    assert [len(page["items"]) for page in pages] == [3, 3, 2]
    assert [item for page in pages for item in page["items"]] == want


async def test_candles_come_one_row_per_bucket_unless_every_revision_is_asked_for(gateway):
    settings, port, _ = gateway
    # Buckets 0..5 of 5m: three revisions each, the third closing it, written interleaved as
    # the engine does (a bucket's first revisions before the previous one closes); bucket 5
    # is still forming.
    written = []
    for n in range(6):
        written += [
            second_candle(n, 100.0 + n, 1, timeframe="5m"),
            second_candle(n, 101.0 + n, 2, timeframe="5m"),
        ]
        if n:
            written.append(second_candle(n - 1, 102.0 + n - 1, 3, closed=True, timeframe="5m"))
    await produce(settings, "candles", written, written_ms=ingest_ms)
    params = {
        "timeframe": "5m",
        "start": micros_to_iso(BASE_US),
        "end": micros_to_iso(BASE_US + 11_000_000),
    }
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        by_bucket = await all_pages(http, "/v1/candles/BTC/USDT", {**params, "limit": 2})
        every = await all_pages(http, "/v1/candles/BTC/USDT", {**params, "revisions": "true"})
    rows = [item for page in by_bucket for item in page["items"]]
    assert [len(page["items"]) for page in by_bucket] == [2, 2, 2]
    assert [row["timestamp"] for row in rows] == [
        candle_item(second_candle(n, 0, 1, timeframe="5m"))["timestamp"] for n in range(6)
    ]
    assert [(row["close"], row["is_closed"]) for row in rows] == [
        (102.0 + n, True) for n in range(5)
    ] + [(106.0, False)]
    assert len([item for page in every for item in page["items"]]) == len(written) == 17


@pytest.mark.parametrize(
    ("params", "status", "detail"),
    [
        ({"limit": 10_001}, 422, "less than or equal to 10000"),
        ({"limit": 0}, 422, "greater than or equal to 1"),
        ({"cursor": "not-a-cursor"}, 400, "cursor"),
        ({"start": micros_to_iso(BASE_US - 3_600_000_000)}, 400, "older than the retention"),
        ({"end": micros_to_iso(BASE_US - 1)}, 400, "end is before start"),
        ({"end": "2100-01-01T00:00:00Z"}, 400, "end is in the future"),
    ],
)
async def test_bad_requests_are_refused(gateway, params, status, detail):
    settings, port, _ = gateway
    await produce(
        settings,
        "quotes",
        [quote("AAPL", 100.0, 1000), quote("AAPL", 101.0, 2000)],
        written_ms=ingest_ms,
    )
    await expire_oldest(settings, "quotes")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        response = await http.get(
            "/v1/quotes/AAPL", params={"start": micros_to_iso(BASE_US), **params}
        )
    assert response.status_code == status
    assert detail in response.text


@pytest.mark.parametrize("zone", ["Z", ""])
async def test_a_start_still_to_come_without_end_gets_an_empty_page(gateway, zone):
    settings, port, _ = gateway
    await produce(settings, "quotes", [quote("AAPL", 100.0, 1000)], written_ms=ingest_ms)
    start = micros_to_iso(now_micros() + 3_600_000_000).removesuffix("Z") + zone
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        pages = await all_pages(http, "/v1/quotes/AAPL", {"start": start})
    assert pages == [{"symbol": "AAPL", "items": [], "next_cursor": None}]


async def test_the_openapi_page_documents_both_endpoints(gateway):
    _, port, _ = gateway
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        document = (await http.get("/openapi.json")).json()
    for path, page in (
        ("/v1/quotes/{symbol}", "QuotePage"),
        ("/v1/candles/{symbol}", "CandlePage"),
    ):
        get = document["paths"][path]["get"]
        schema = get["responses"]["200"]["content"]["application/json"]["schema"]
        assert schema == {"$ref": f"#/components/schemas/{page}"}
        assert {"start", "end", "limit", "cursor"} <= {p["name"] for p in get["parameters"]}
    assert "items" in document["components"]["schemas"]["CandlePage"]["properties"]


async def test_caps_cut_pages_refuse_long_ranges_and_the_consumers_are_reused(topics):
    """A page reads at most FIML_MAX_HISTORY_SCAN_RECORDS records of the symbol's partition
    and its cursor goes on from there; a range over FIML_MAX_HISTORY_RANGE_HOURS is refused;
    every request borrows a consumer of the gateway's pool instead of making one."""
    settings = dataclasses.replace(
        topics, gateway_port=free_port(), max_history_scan_records=10, max_history_range_hours=1
    )
    neighbour = next(  # a symbol in AAPL's partition: its records are read and skipped
        s
        for s in (f"N{n}" for n in range(100))
        if key_partition(s.encode(), 3) == key_partition(b"AAPL", 3)
    )
    await produce(
        settings,
        "quotes",
        [quote("AAPL" if n % 4 == 0 else neighbour, 100.0 + n, n * 1000) for n in range(60)],
        written_ms=ingest_ms,
    )
    stored = await read_topic(settings, "quotes", Quote)
    want = [quote_item(r) for _, _, r in sorted(stored, key=lambda x: x[1]) if r.symbol == "AAPL"]
    start, end = micros_to_iso(BASE_US), micros_to_iso(BASE_US + 3_600_000_000)
    url = "/v1/quotes/AAPL"
    async with (
        serve_gateway(settings) as app,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.gateway_port}", timeout=30) as http,
    ):
        pages = await all_pages(http, url, {"start": start, "end": end, "limit": 1000})
        # 10 records of the partition a page, every fourth AAPL's
        assert [len(page["items"]) for page in pages] == [3, 2, 3, 2, 3, 2]
        assert [item for page in pages for item in page["items"]] == want
        assert app.state.readers.created == 1  # one request after the other: one consumer
        over = await http.get(url, params={"start": start, "end": "2025-11-24T17:00:00.001Z"})
        assert over.status_code == 400
        assert "longer than the 1 hours one request may ask for" in over.json()["detail"]
        parallel = await asyncio.gather(
            *(http.get(url, params={"start": start, "end": end}) for _ in range(4))
        )
        assert [answer.json()["items"] for answer in parallel] == [want[:3]] * 4
        assert app.state.readers.created <= 4
