"""Helpers for tests and benchmarks, like Starlette's ``testclient.py``: free ports and a
broker of one's own. Production code never imports this module (an import contract says so).
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from runtime.broker import LocalKafka
from runtime.processes import stop_process
from runtime.settings import Settings


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def isolated_broker_settings(data_dir: Path) -> Settings:
    """Settings of a broker of its own: free ports, data in ``data_dir``, no FIML_* from
    the environment."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("FIML_")}
    return Settings.from_env(
        env, kafka_port=free_port(), kafka_controller_port=free_port(), kafka_data_dir=str(data_dir)
    )


@contextlib.contextmanager
def temporary_broker(data_dir: Path) -> Iterator[str]:
    """A broker of its own (see :func:`isolated_broker_settings`); yields its address and
    stops when the block ends or this process dies."""
    local = LocalKafka(isolated_broker_settings(data_dir))
    process = local.start(stop_with_parent=True)
    try:
        yield local.bootstrap
    finally:
        stop_process(process, timeout=30)
