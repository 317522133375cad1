"""examples/websocket_streaming.py streams several subscriptions and survives a gateway kill."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from runtime.processes import stop_process
from runtime.testing import free_port
from tests.support import service_env, spawn, wait_for_port

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "websocket_streaming.py"


class LineReader:
    """Collects a process's output lines in a thread, so waits can time out."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self.thread.start()

    def _read(self, process: subprocess.Popen) -> None:
        for line in process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, predicate, start: int, timeout: float) -> int:
        """Index of the first line from ``start`` on that satisfies ``predicate``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for index in range(start, len(self.lines)):
                if predicate(self.lines[index]):
                    return index
            time.sleep(0.1)
        raise AssertionError(f"no matching line within {timeout} s: {self.lines[start:][-20:]}")


def test_streaming_example_reconnects_and_resubscribes_after_a_gateway_kill(topics, tmp_path):
    settings = dataclasses.replace(
        topics, gateway_port=free_port(), symbols=("AAPL", "TSLA", "ETH/USDT", "BTC/USDT")
    )
    env = service_env(settings)
    services = {
        name: spawn([name], env, tmp_path / f"{name}.log")
        for name in ("ingest", "arbitrate", "gateway")
    }
    client = None
    try:
        wait_for_port(settings.gateway_port, timeout=60)
        client = subprocess.Popen(
            [
                sys.executable,
                str(EXAMPLE),
                "--uri",
                f"ws://127.0.0.1:{settings.gateway_port}/ws/stream",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        reader = LineReader(client)
        first = reader.wait_for(lambda line: line == "connected", 0, 30)
        reader.wait_for(lambda line: line.startswith("price AAPL "), first, 60)
        reader.wait_for(lambda line: line.startswith("quote ETH/USDT "), first, 60)
        subscribed = [line for line in reader.lines if line.startswith("subscribed ")]
        assert {line.split()[1] for line in subscribed} == {"price", "quote", "ohlcv", "trades"}

        os.kill(services["gateway"].pid, signal.SIGKILL)
        services["gateway"].wait()
        dropped = reader.wait_for(lambda line: line.startswith("disconnected"), first, 30)
        services["gateway"] = spawn(["gateway"], env, tmp_path / "gateway-2.log")
        again = reader.wait_for(lambda line: line == "connected", dropped, 60)
        reader.wait_for(lambda line: line == "subscribed price AAPL,TSLA", again, 30)
        reader.wait_for(lambda line: line.startswith("price AAPL "), again, 60)
    finally:
        if client is not None:
            stop_process(client)
        for process in services.values():
            stop_process(process)
