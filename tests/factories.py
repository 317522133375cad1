"""Records, configurations and fixed times the tests build, in one place."""

from __future__ import annotations

import dataclasses
from typing import Any

from arbitration.configure import engine_config
from arbitration.engine.config import EngineConfig
from runtime.settings import Settings


def default_config(**changes: Any) -> EngineConfig:
    """The engine configuration of the default settings, with ``changes``."""
    return dataclasses.replace(engine_config(Settings()), **changes)
