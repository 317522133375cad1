"""How a provider reacts to a failed call: the status it reports and the backoff it follows."""

from __future__ import annotations

from dataclasses import dataclass

from runtime.backoff import Backoff


@dataclass(frozen=True)
class Failure:
    """How to react to one failed call: the status to report and the backoff to follow."""

    kind: str
    state: str
    backoff: Backoff
