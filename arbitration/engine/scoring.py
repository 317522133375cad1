"""Provider scores, consensus and quote confidence: pure functions of numbers.

Every score component is in [0, 1], higher is better:

- freshness ``f = 1 - age / freshness`` clipped to [0, 1], where ``age`` is the event time of
  the newest tick of the symbol (any provider) minus that of the provider's last quote tick;
- latency ``l = 1 / (1 + L / latency_scale)``, ``L`` the provider's smoothed
  ``ts_ingest - ts_event`` (exponential moving average, factor ``LATENCY_SMOOTHING``);
- uptime ``u``: moving average of its ProviderStatus states (UP 1, DEGRADED 0.5, DOWN 0);
- completeness ``c``: share of the optional quote fields (bid, ask, sizes, volume,
  reference price) its last tick carried;
- reliability ``r = 1 - rejected / seen`` over the provider's ticks of the symbol;
- agreement ``a = 1 / (1 + d / agreement_bps)``, ``d`` the distance of its price from the
  consensus (:func:`consensus` of the fresh providers' latest prices) in basis points.

The score is the weighted mean ``sum(w_i * s_i) / sum(w_i)`` (0 if every weight is 0).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import astuple
from operator import mul

from arbitration.engine.config import Components, Weights

LATENCY_SMOOTHING = 0.2
BPS = 10_000.0


def freshness(age_us: float, window_us: float) -> float:
    """1 for a tick as new as the newest, falling linearly to 0 at ``window_us`` old."""
    if window_us <= 0:
        return 1.0 if age_us <= 0 else 0.0
    return min(1.0, max(0.0, 1.0 - age_us / window_us))


def latency(latency_us: float, scale_us: float) -> float:
    """1 for no delay, 0.5 at ``scale_us``, towards 0 for long delays."""
    return 1.0 / (1.0 + max(0.0, latency_us) / scale_us)


def reliability(seen: int, rejected: int) -> float:
    """The share of a provider's ticks that were not rejected (1 before any tick)."""
    return 1.0 if seen <= 0 else 1.0 - rejected / seen


def deviation_bps(price: float, consensus: float) -> float:
    """Distance of ``price`` from ``consensus`` in basis points of the consensus."""
    return abs(price - consensus) / consensus * BPS


def agreement(price: float, consensus: float, tolerance_bps: float) -> float:
    """1 at the consensus, 0.5 at ``tolerance_bps`` away, towards 0 further out."""
    return 1.0 / (1.0 + deviation_bps(price, consensus) / tolerance_bps)


def consensus(values: Sequence[float], reference: float | None = None) -> float:
    """The median of ``values``; of an even number, the middle value nearer ``reference``
    (the last quote's price), or the mean of the two middle values without one.

    So a tie between two equal-sized groups of providers goes to the group the quote is at,
    and the consensus is always the price of a provider, or between two.
    """
    data = sorted(values)
    n = len(data)
    if n == 0:
        raise ValueError("no consensus of no prices")
    if n % 2:
        return data[n // 2]
    low, high = data[n // 2 - 1], data[n // 2]
    if reference is None:
        return (low + high) / 2
    return low if abs(low - reference) <= abs(high - reference) else high


def spread(values: Sequence[float], center: float) -> float:
    """The low median of the absolute deviations of ``values`` from ``center``: the
    ``(n + 1) // 2``-th smallest, so a strict majority within ``w`` of ``center`` makes it
    at most ``w`` (for an even ``n`` too)."""
    if not values:
        raise ValueError("no spread of no prices")
    return sorted(abs(v - center) for v in values)[(len(values) - 1) // 2]


def score(parts: Components, weights: Weights) -> float:
    """Weighted mean of the components; 0 if every weight is 0."""
    return weighted_mean(astuple(parts), astuple(weights))


def weighted_mean(values: Sequence[float], weights: Sequence[float]) -> float:
    """``sum(w_i * v_i) / sum(w_i)`` of components and weights in the same order (the
    fields of :class:`Components` and of ``Weights``); 0 if every weight is 0."""
    total = sum(weights)
    if total <= 0:
        return 0.0
    weighted: float = sum(map(mul, weights, values))
    return weighted / total


def confidence(agreements: Sequence[float], driver_freshness: float, expected: int) -> float:
    """Confidence of a quote in [0, 1]: ``A * (0.5 + 0.5 * F) * min(1, n / expected)``.

    ``A`` is the mean agreement of the ``n`` fresh providers and ``F`` the driver's freshness.
    Each factor is in [0, 1] and non-decreasing in its input, so more agreement, a fresher
    driver or one more agreeing provider never lowers the confidence.
    """
    if not agreements:
        return 0.0
    mean_agreement = math.fsum(agreements) / len(agreements)
    coverage = min(1.0, len(agreements) / expected)
    value = mean_agreement * (0.5 + 0.5 * driver_freshness) * coverage
    return round(min(1.0, max(0.0, value)), 4)
