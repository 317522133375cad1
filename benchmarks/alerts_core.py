"""Alert rules evaluated per second by the pure evaluator, beside a bare loop, in one run.

Usage: ``python benchmarks/alerts_core.py [--quick] [--quotes N] [--out FILE]``

10 000 rules over 100 symbols (100 per symbol) and a random walk of quotes over those
symbols, 10 ms of event time apart. Measured, one after the other in the same process:

- ``bare``: per quote, a plain Python loop comparing its price with the 100 levels of its
  symbol, the floor of any per-rule evaluation in Python;
- ``mixed``: the evaluator with a mix of kinds (30% price_above, 30% price_below, 20%
  crosses, 10% change_pct over 1, 5 or 15 minutes, 10% stale);
- one scenario per quote-driven kind, all 10 000 rules of that kind.

For each: quotes per second, rule evaluations per second (quotes x 100), CPU microseconds
per quote (``time.process_time``) and the alerts fired; and for the mixed run the size of a
JSON snapshot at the end (and zlib-compressed) and the time to take it. No broker is involved.
"""

from __future__ import annotations

import argparse
import json
import random
import time
import zlib
from pathlib import Path

from harness import run_facts

from domain.alerts.evaluator import AlertEvaluator
from domain.alerts.firing import Source
from domain.alerts.snapshot import snapshot
from schemas.alerts import AlertRule
from schemas.records import Quote

SYMBOLS = [f"S{n:03}" for n in range(100)]
RULES = 10_000
SECOND = 1_000_000
START = 1_763_807_400_000_000
MIX = ["price_above"] * 3 + ["price_below"] * 3 + ["crosses"] * 2 + ["change_pct", "stale"]
KINDS = ("price_above", "price_below", "crosses", "change_pct", "stale")


def make_rules(kinds: list[str], rng: random.Random) -> list[AlertRule]:
    """RULES rules, round robin over the symbols, kinds drawn from ``kinds``."""
    made = []
    for number in range(RULES):
        kind = rng.choice(kinds)
        parameters: dict[str, object] = {}
        if kind in ("price_above", "price_below", "crosses"):
            parameters["level"] = 100.0 * (1 + rng.uniform(-0.02, 0.02))
        elif kind == "change_pct":
            parameters.update(
                pct=rng.choice([0.5, 1.0, 2.0]),
                direction="either",
                window_us=rng.choice([60, 300, 900]) * SECOND,
            )
        else:
            parameters["silence_us"] = rng.choice([5, 30, 60]) * SECOND
        made.append(
            AlertRule(
                f"r{number:05}",
                "anonymous",
                kind,
                "repeat",
                rng.choice([0, 60 * SECOND]),
                START,
                [SYMBOLS[number % 100]],
                [],
                **parameters,
            )
        )  # type: ignore[arg-type]
    return made


def make_quotes(count: int, rng: random.Random) -> list[Quote]:
    """A random walk per symbol (0.05% steps), symbols in random order, 10 ms apart."""
    prices = dict.fromkeys(SYMBOLS, 100.0)
    quotes = []
    for n in range(count):
        symbol = rng.choice(SYMBOLS)
        prices[symbol] *= 1 + rng.gauss(0, 0.0005)
        at = START + n * 10_000
        quotes.append(Quote(symbol, at, at, n, prices[symbol], "synthetic:alpha", 1.0))
    return quotes


def measure_bare(quotes: list[Quote], rules: list[AlertRule]) -> dict[str, float]:
    levels: dict[str, list[float]] = {symbol: [] for symbol in SYMBOLS}
    for rule in rules:
        levels[rule.symbols[0]].append(rule.level or 100.0)
    hits = 0
    cpu, wall = time.process_time(), time.perf_counter()
    for quote in quotes:
        price = quote.price
        for level in levels[quote.symbol]:
            if price >= level:
                hits += 1
    return _rates(len(quotes), time.process_time() - cpu, time.perf_counter() - wall, hits)


def measure(quotes: list[Quote], rules: list[AlertRule]) -> tuple[dict[str, float], AlertEvaluator]:
    evaluator = AlertEvaluator()
    for rule in rules:
        evaluator.upsert(rule)
    fired = 0
    cpu, wall = time.process_time(), time.perf_counter()
    for offset, quote in enumerate(quotes):
        fired += len(evaluator.on_quote(quote, Source("fiml.quotes", 0, offset)))
    rates = _rates(len(quotes), time.process_time() - cpu, time.perf_counter() - wall, fired)
    return rates, evaluator


def _rates(quotes: int, cpu: float, wall: float, fired: int) -> dict[str, float]:
    per_symbol = RULES / len(SYMBOLS)
    return {
        "quotes_per_s": round(quotes / wall),
        "rules_per_s": round(quotes * per_symbol / wall),
        "cpu_us_per_quote": round(cpu / quotes * 1e6, 2),
        "cpu_us_per_rule": round(cpu / quotes / per_symbol * 1e6, 3),
        "fired": fired,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="20 000 quotes instead of 100 000")
    parser.add_argument("--quotes", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    count = args.quotes or (20_000 if args.quick else 100_000)
    quotes = make_quotes(count, random.Random(7))
    mixed_rules = make_rules(MIX, random.Random(11))
    result: dict[str, object] = {
        **run_facts(),
        "rules": RULES,
        "symbols": len(SYMBOLS),
        "quotes": count,
    }
    result["bare"] = measure_bare(quotes, mixed_rules)
    mixed, evaluator = measure(quotes, mixed_rules)
    started = time.perf_counter()
    data = json.dumps(snapshot(evaluator)).encode()
    mixed.update(
        snapshot_ms=round((time.perf_counter() - started) * 1e3),
        snapshot_bytes=len(data),
        snapshot_zlib_bytes=len(zlib.compress(data)),
    )
    result["mixed"] = mixed
    for kind in KINDS:
        result[kind] = measure(quotes, make_rules([kind], random.Random(11)))[0]
    bare_cpu = result["bare"]["cpu_us_per_quote"]  # type: ignore[index]
    result["mixed_cpu_over_bare"] = round(mixed["cpu_us_per_quote"] / bare_cpu, 1)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
