"""Helpers of the integration tests: child services, waiting for them, their metrics, process
scans."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from runtime.processes import die_with_parent
from runtime.settings import Settings


def service_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a child process that should see exactly ``settings``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("FIML_")}
    return {**env, **settings.to_env(), **extra}


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start ``python -m fiml <args>``; it dies with the test process."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "fiml", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent(),
        )


def wait_for_port(port: int, timeout: float, host: str = "127.0.0.1") -> None:
    """Block until something listens on ``host:port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"nothing listened on {host}:{port} after {timeout} s")


def processes_with_env(marker: str) -> list[int]:
    """Ids of live processes (other than this one) whose environment contains ``marker``."""
    needle = marker.encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if needle in environ.split(b"\0") and state != "Z":
            found.append(int(entry.name))
    return found


async def poll_until(
    predicate: Callable[[], bool | Awaitable[bool]], within: float, interval: float = 0.2
) -> None:
    """Wait until ``predicate()`` (or what it returns, if awaitable) holds; fail after
    ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        held = predicate()
        if inspect.isawaitable(held):
            held = await held
        if held:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(interval)


async def worst_loop_stall(samples: int = 50, period: float = 0.01) -> float:
    """The longest extra delay, in seconds, of ``samples`` short sleeps on this event loop:
    how long something else kept the loop from running."""
    loop = asyncio.get_running_loop()
    worst = 0.0
    for _ in range(samples):
        before = loop.time()
        await asyncio.sleep(period)
        worst = max(worst, loop.time() - before - period)
    return worst


# How long a spawned service may take to answer its health endpoints.
SERVICE_START_TIMEOUT = 90.0


async def poll(
    url: str, within: float = SERVICE_START_TIMEOUT, process: subprocess.Popen | None = None
) -> list[int]:
    """Status codes of ``url``, polled until it answers 200; connection errors are skipped.

    Fails at once if ``process``, the server, has exited.
    """
    seen: list[int] = []
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise AssertionError(f"the server exited with code {process.returncode}")
            with contextlib.suppress(httpx.TransportError):
                seen.append((await client.get(url)).status_code)
            if seen and seen[-1] == 200:
                return seen
            await asyncio.sleep(0.2)
    raise AssertionError(f"{url} did not answer 200 within {within} s: {seen[-5:]}")


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of an exposition, keyed by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def scrape(client: httpx.AsyncClient, url: str) -> Samples:
    response = await client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)
