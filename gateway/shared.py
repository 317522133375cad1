"""What every WebSocket connection of one gateway app shares."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.admission import Admission
from gateway.clock import Clocks
from gateway.providers import ProviderStatuses
from gateway.registry import ConnectionRegistry
from gateway.stores import MarketStores
from runtime.catalog import Catalog
from runtime.readers import ReaderPool
from runtime.settings import Settings


@dataclass(frozen=True)
class Shared:
    """What every connection of one gateway app shares."""

    settings: Settings
    market: MarketStores
    registry: ConnectionRegistry
    statuses: ProviderStatuses
    catalog: Catalog
    clocks: Clocks
    admission: Admission
    readers: ReaderPool
