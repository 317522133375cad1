"""Alert rules from client input: validation with limits, owners, and the client view of a rule."""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
from collections.abc import Mapping
from typing import TypedDict

from domain.alerts.webhooks import webhook_url_problem
from schemas.alerts import AlertRule
from schemas.symbols import InvalidSymbol, canonical_symbol
from schemas.times import SECOND, TIMEFRAMES, micros_to_iso

PARAMETERS: dict[str, tuple[str, ...]] = {
    "price_above": ("level",),
    "price_below": ("level",),
    "crosses": ("level",),
    "change_pct": ("pct", "window_seconds", "direction"),
    "volume_spike": ("factor", "lookback", "timeframe"),
    "stale": ("seconds",),
    "provider_down": (),
}
KINDS = tuple(PARAMETERS)
MODES = ("once", "repeat")
DIRECTIONS = ("up", "down", "either")
FIELDS = frozenset(
    {"kind", "symbols", "providers", "parameters", "mode", "cooldown_seconds", "webhook_url"}
)

MAX_RULES_PER_OWNER = 100
MAX_SYMBOLS_PER_RULE = 50
MAX_PROVIDERS_PER_RULE = 20
MAX_LEVEL = 1e12
MAX_PCT = 1000.0
MAX_WINDOW_SECONDS = 86_400
MAX_FACTOR = 1000.0
MAX_LOOKBACK = 100
MAX_SILENCE_SECONDS = 86_400
MAX_COOLDOWN_SECONDS = 7 * 86_400
ANONYMOUS = "anonymous"
_RULE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_PROVIDER = re.compile(r"[a-z0-9][a-z0-9_.:-]{0,63}")
_OWNER_DOMAIN = b"fiml-alert-owner\x00"


class Parameters(TypedDict, total=False):
    """The parameter fields of a rule, as :class:`AlertRule` names them."""

    level: float
    pct: float
    direction: str
    window_us: int
    factor: float
    lookback: int
    timeframe: str
    silence_us: int


class InvalidRule(ValueError):
    """Client input that is not a valid alert rule; the message names the field and why."""


def owner_of(api_key: str | None) -> str:
    """The owner of a caller: ``anonymous`` without a key, else ``k_`` + 24 hex of its SHA-256."""
    if not api_key:
        return ANONYMOUS
    return "k_" + hashlib.sha256(_OWNER_DOMAIN + api_key.encode()).hexdigest()[:24]


def parse_rule(
    data: Mapping[str, object], *, rule_id: str, owner: str, created_at: int, owner_rules: int
) -> AlertRule:
    """Validate client input as a new rule of ``owner``, who has ``owner_rules`` rules already."""
    if not _RULE_ID.fullmatch(rule_id):
        raise InvalidRule(f"rule id must be 1 to 64 of A-Z a-z 0-9 _ -, got {_shown(rule_id)}")
    if owner_rules >= MAX_RULES_PER_OWNER:
        raise InvalidRule(f"an owner has at most {MAX_RULES_PER_OWNER} rules; delete one first")
    if not isinstance(data, Mapping):
        raise InvalidRule("a rule must be a JSON object")
    unknown = sorted(str(key) for key in data if key not in FIELDS)
    if unknown:
        raise InvalidRule(
            f"unknown field {_shown(unknown[0])}; fields are {', '.join(sorted(FIELDS))}"
        )
    kind = _choice(data.get("kind"), KINDS, "kind")
    mode = _choice(data.get("mode", "once"), MODES, "mode")
    if kind == "provider_down":
        symbols: list[str] = []
        providers = _providers(data.get("providers"))
        if "symbols" in data:
            raise InvalidRule("provider_down takes providers, not symbols")
    else:
        symbols = _symbols(data.get("symbols"))
        providers = []
        if "providers" in data:
            raise InvalidRule(f"{kind} takes symbols, not providers")
    cooldown = _integer(
        data.get("cooldown_seconds", 0), "cooldown_seconds", 0, MAX_COOLDOWN_SECONDS
    )
    url = data.get("webhook_url")
    problem = None if url is None else webhook_url_problem(url)
    if problem is not None:
        raise InvalidRule(problem)
    return AlertRule(
        rule_id,
        owner,
        kind,
        mode,
        cooldown * SECOND,
        created_at,
        symbols,
        providers,
        webhook_url=url if isinstance(url, str) else None,
        **_parameters(kind, data.get("parameters", {})),
    )


def rule_view(rule: AlertRule) -> dict[str, object]:
    """The client form of a rule: what :func:`parse_rule` reads, with its id and creation time."""
    return {
        "rule_id": rule.rule_id,
        **_client_form(rule),
        "created_at": micros_to_iso(rule.created_at),
    }


def check_record(rule: AlertRule) -> None:
    """Raise :class:`InvalidRule` unless ``rule`` is what :func:`parse_rule` makes of its
    client form (with any ``deleted_at``): for records read back from the rules topic."""
    parsed = parse_rule(
        _client_form(rule),
        rule_id=rule.rule_id,
        owner=rule.owner,
        created_at=rule.created_at,
        owner_rules=0,
    )
    if dataclasses.replace(parsed, deleted_at=rule.deleted_at) != rule:
        raise InvalidRule(
            f"rule {rule.rule_id}: a field its kind does not take, a symbol not "
            "in canonical form, or a duration not in whole seconds"
        )


def _client_form(rule: AlertRule) -> dict[str, object]:
    form: dict[str, object] = {"kind": rule.kind}
    if rule.kind == "provider_down":
        form["providers"] = list(rule.providers)
    else:
        form["symbols"] = list(rule.symbols)
    parameters: dict[str, object] = {}
    if rule.kind in ("price_above", "price_below", "crosses"):
        parameters["level"] = rule.level
    if rule.kind == "change_pct":
        parameters.update(
            pct=rule.pct, window_seconds=_seconds(rule.window_us), direction=rule.direction
        )
    if rule.kind == "volume_spike":
        parameters.update(factor=rule.factor, lookback=rule.lookback, timeframe=rule.timeframe)
    if rule.kind == "stale":
        parameters["seconds"] = _seconds(rule.silence_us)
    form.update(
        parameters=parameters,
        mode=rule.mode,
        cooldown_seconds=rule.cooldown_us // SECOND,
        webhook_url=rule.webhook_url,
    )
    return form


def _parameters(kind: str, raw: object) -> Parameters:
    if not isinstance(raw, Mapping):
        raise InvalidRule("parameters must be a JSON object")
    allowed = PARAMETERS[kind]
    unknown = sorted(str(key) for key in raw if key not in allowed)
    if unknown:
        names = ", ".join(allowed) or "none"
        raise InvalidRule(
            f"unknown parameter {_shown(unknown[0])} for {kind}; its parameters: {names}"
        )
    if kind in ("price_above", "price_below", "crosses"):
        return {"level": _number(raw.get("level"), "parameters.level", MAX_LEVEL)}
    if kind == "change_pct":
        direction = _choice(raw.get("direction", "either"), DIRECTIONS, "parameters.direction")
        window = _integer(
            raw.get("window_seconds"), "parameters.window_seconds", 1, MAX_WINDOW_SECONDS
        )
        return {
            "pct": _number(raw.get("pct"), "parameters.pct", MAX_PCT),
            "window_us": window * SECOND,
            "direction": direction,
        }
    if kind == "volume_spike":
        timeframe = _choice(raw.get("timeframe"), tuple(TIMEFRAMES), "parameters.timeframe")
        factor = _number(raw.get("factor"), "parameters.factor", MAX_FACTOR)
        if factor < 1:
            raise InvalidRule(f"parameters.factor must be at least 1, got {factor!r}")
        return {
            "factor": factor,
            "timeframe": timeframe,
            "lookback": _integer(raw.get("lookback"), "parameters.lookback", 1, MAX_LOOKBACK),
        }
    if kind == "stale":
        seconds = _integer(raw.get("seconds"), "parameters.seconds", 1, MAX_SILENCE_SECONDS)
        return {"silence_us": seconds * SECOND}
    return {}


def _shown(value: object) -> str:
    """``repr`` of client input, cut short."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _choice(value: object, options: tuple[str, ...], name: str) -> str:
    if not isinstance(value, str) or value not in options:
        raise InvalidRule(f"{name} must be one of {', '.join(options)}, got {_shown(value)}")
    return value


def _number(value: object, name: str, most: float) -> float:
    if value is None:
        raise InvalidRule(f"{name} is required")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRule(f"{name} must be a number, got {_shown(value)}")
    if not (-most <= value <= most and math.isfinite(value) and value > 0):
        raise InvalidRule(f"{name} must be above 0 and at most {most:g}, got {_shown(value)}")
    return float(value)


def _integer(value: object, name: str, least: int, most: int) -> int:
    if value is None:
        raise InvalidRule(f"{name} is required")
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRule(f"{name} must be a whole number, got {_shown(value)}")
    if not least <= value <= most:
        raise InvalidRule(f"{name} must be from {least} to {most}, got {_shown(value)}")
    return value


def _symbols(raw: object) -> list[str]:
    if not isinstance(raw, list) or not raw:
        raise InvalidRule("symbols must be a non-empty list of symbols")
    if len(raw) > MAX_SYMBOLS_PER_RULE:
        raise InvalidRule(f"a rule has at most {MAX_SYMBOLS_PER_RULE} symbols, got {len(raw)}")
    try:
        return list(dict.fromkeys(canonical_symbol(item) for item in raw))
    except InvalidSymbol as error:
        raise InvalidRule(f"symbols: {error}") from None


def _providers(raw: object) -> list[str]:
    if not isinstance(raw, list) or not raw:
        raise InvalidRule("providers must be a non-empty list of provider names")
    if len(raw) > MAX_PROVIDERS_PER_RULE:
        raise InvalidRule(f"a rule has at most {MAX_PROVIDERS_PER_RULE} providers, got {len(raw)}")
    for item in raw:
        if not isinstance(item, str) or not _PROVIDER.fullmatch(item):
            raise InvalidRule(
                f"providers: {_shown(item)} is not a provider name "
                "(lower case letters, digits and _ . : -)"
            )
    return list(dict.fromkeys(raw))


def _seconds(micros: int | None) -> int | None:
    return None if micros is None else micros // SECOND
