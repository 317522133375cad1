"""The gateway-wide caps (README "Limits"): connections in all and per client address,
replays and history requests running at once. Each is off at 0."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from runtime.settings import Settings

# Consumers kept for history and replays when either of their caps is off.
UNCAPPED_READERS = 64


@dataclass
class Slots:
    """At most ``limit`` holders at a time (0: no limit)."""

    limit: int
    taken: int = 0

    def take(self) -> bool:
        """Take a slot if one is free."""
        if self.limit and self.taken >= self.limit:
            return False
        self.taken += 1
        return True

    def give(self) -> None:
        """Give a slot back."""
        self.taken -= 1


def history_readers(settings: Settings) -> int:
    """How many consumers the gateway keeps for reading history: one per history request
    and replay that may run at once."""
    if settings.max_history_requests and settings.max_replays:
        return settings.max_history_requests + settings.max_replays
    return UNCAPPED_READERS


@dataclass
class Admission:
    """Who may connect, replay and read history now."""

    max_connections: int
    max_per_client: int
    replays: Slots
    history: Slots
    clients: Counter[str] = field(default_factory=Counter)

    @classmethod
    def from_settings(cls, settings: Settings) -> Admission:
        """The caps ``settings`` sets."""
        return cls(
            settings.max_connections,
            settings.max_connections_per_client,
            Slots(settings.max_replays),
            Slots(settings.max_history_requests),
        )

    def refuse_connection(self, address: str) -> str | None:
        """Why a new connection from ``address`` may not open now, or None (then it counts
        until :meth:`leave`)."""
        if self.max_connections and self.clients.total() >= self.max_connections:
            return f"connection limit of {self.max_connections} reached; retry later"
        if self.max_per_client and self.clients[address] >= self.max_per_client:
            return f"limit of {self.max_per_client} connections per client address reached"
        self.clients[address] += 1
        return None

    def leave(self, address: str) -> None:
        """A connection from ``address`` closed."""
        self.clients[address] -= 1
        if self.clients[address] <= 0:
            del self.clients[address]
