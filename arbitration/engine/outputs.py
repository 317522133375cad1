"""Output records as Kafka messages, each with a marker that makes rewriting idempotent.

Every output of raw offset ``o`` carries the header ``fiml-source: <o>:<i>``, ``i`` its
index among the outputs of ``o`` to the same topic. The engine's outputs per topic are a
deterministic sequence, and the records of one Kafka partition are a prefix of what was
sent to it, so after a crash the marker of the last record in each output partition says
exactly which outputs are already written; :func:`messages` skips them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from arbitration.engine.partition import ROLES, Output, output_key
from schemas import encode
from schemas.records import Rejected
from schemas.topics import TopicRole

MARKER_HEADER = "fiml-source"

Marker = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Message:
    """One record to produce: the topic role, key, value and marker header.

    ``reason`` is a rejection's reason (for the metric), None for other records.
    """

    role: TopicRole
    key: bytes | None
    value: bytes
    marker: Marker
    reason: str | None = None

    @property
    def headers(self) -> list[tuple[str, bytes]]:
        """Kafka headers carrying the marker."""
        return [(MARKER_HEADER, format_marker(self.marker))]


def format_marker(marker: Marker) -> bytes:
    """The header value of a marker."""
    return f"{marker[0]}:{marker[1]}".encode()


def parse_marker(headers: Sequence[tuple[str, bytes]] | None) -> Marker | None:
    """The marker in a record's headers, or None if it has none."""
    for name, value in headers or ():
        if name == MARKER_HEADER:
            offset, _, index = value.decode().partition(":")
            return int(offset), int(index)
    return None


def messages(
    offset: int, outputs: Sequence[Output], written: Mapping[TopicRole, Marker]
) -> list[Message]:
    """The messages of the outputs of raw ``offset`` not yet written per ``written``."""
    counts: dict[TopicRole, int] = {}
    found = []
    for record in outputs:
        role = ROLES[type(record)]
        index = counts.get(role, 0)
        counts[role] = index + 1
        marker = (offset, index)
        done = written.get(role)
        if done is None or marker > done:
            reason = record.reason if type(record) is Rejected else None
            found.append(Message(role, output_key(record), encode(record), marker, reason))
    return found
