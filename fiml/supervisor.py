"""``fiml up``: the whole system on one machine, stopped as one.

It starts the local broker (unless ``FIML_KAFKA_BOOTSTRAP`` names a cluster), creates the
topics, then runs ingest, arbitration, the alerts worker (``fiml alerts evaluate``) and the
gateway as child processes; ingest, arbitration and the alerts worker serve /healthz,
/readyz and /metrics on ``FIML_UP_INGEST_HEALTH_PORT``, ``FIML_UP_ARBITRATION_HEALTH_PORT``
and ``FIML_UP_ALERTS_HEALTH_PORT`` (8001, 8002, 8004; 0 turns one off). When
``FIML_ALERT_WEBHOOK_SECRET`` is set it also runs the webhook worker (``fiml alerts
webhooks``), its endpoints on ``FIML_UP_WEBHOOKS_HEALTH_PORT`` (8003). Ctrl-C or SIGTERM
stops them all, the broker last. With ``--registry`` it also starts the local schema registry
(seeded with the codec's fixed ids when empty; one ``fiml registry start`` began is used and
left running) after the broker and gives the services its URL
(``FIML_SCHEMA_REGISTRY_URL``). If one service dies, the rest are stopped too and the exit
code says so. Children get SIGTERM from the kernel if this process itself is killed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field

from runtime.broker import LocalKafka
from runtime.processes import SUPERVISOR_VARIABLE, die_with_parent, stop_process
from runtime.registry import LocalRegistry
from runtime.schema_ids import connect, register_subjects
from runtime.settings import Settings
from runtime.topics import create_topics
from schemas.registry_plan import codec_versions

#: The alerts worker, which ``fiml up`` always runs.
ALERTS = "alerts"
SERVICES = ("ingest", "arbitrate", ALERTS, "gateway")
#: The service ``fiml up`` adds when ``FIML_ALERT_WEBHOOK_SECRET`` is set.
WEBHOOKS = "webhooks"
#: The command of each service whose name is not its command.
COMMANDS = {ALERTS: ["alerts", "evaluate"], WEBHOOKS: ["alerts", "webhooks"]}


@dataclass
class Supervisor:
    """The processes ``fiml up`` started, and how to stop them."""

    settings: Settings
    broker: subprocess.Popen[bytes] | None = None
    with_registry: bool = False
    registry: subprocess.Popen[bytes] | None = None
    services: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    stopping: bool = False

    def run(self) -> int:
        """Start everything, wait for a signal or a dead service, stop everything."""
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._request_stop)
        try:
            self._start()
            return self._watch()
        finally:
            self._stop_all()

    def _request_stop(self, signum: int, frame: object) -> None:
        self.stopping = True

    def _start(self) -> None:
        settings = self.settings
        if settings.kafka_bootstrap is None:
            local = LocalKafka(settings)
            print(
                f"starting Apache Kafka {settings.kafka_version} on {local.bootstrap} "
                f"(log: {local.log_file})",
                flush=True,
            )
            self.broker = local.start(stop_with_parent=True)
            settings = local.client_settings()
            self.settings = settings
        if self.with_registry:
            settings = self._start_registry(settings)
        created = asyncio.run(create_topics(settings))
        print(f"topics ready ({len(created)} created)", flush=True)
        env = {**os.environ, **settings.to_env(), SUPERVISOR_VARIABLE: str(os.getpid())}
        for name in self.names():
            if self.stopping:
                return
            self.services[name] = subprocess.Popen(
                [sys.executable, "-m", "fiml", *COMMANDS.get(name, [name])],
                env={**env, **self._health_env(name)},
                stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent(),
            )
        self._await_gateway()

    def _start_registry(self, settings: Settings) -> Settings:
        local = LocalRegistry.of(settings)
        if local.running_pid() is None:
            print(
                f"starting the schema registry at {local.ccompat_url} (log: {local.log_file})",
                flush=True,
            )
            self.registry = local.start(stop_with_parent=True)
        else:  # `fiml registry start` runs it: used, and left running
            print(f"using the running schema registry at {local.ccompat_url}", flush=True)
        local.seed(codec_versions(settings.topic))
        self.settings = dataclasses.replace(settings, schema_registry_url=local.ccompat_url)
        with connect(self.settings) as client:  # once here, not by three services at once
            register_subjects(client, self.settings)
        return self.settings

    def names(self) -> tuple[str, ...]:
        """The services to run, in the order they start (they stop in the reverse)."""
        return SERVICES + ((WEBHOOKS,) if self.settings.alert_webhook_secret else ())

    def _health_env(self, name: str) -> dict[str, str]:
        """The health port of one service: each but the gateway gets its own (the gateway
        serves /healthz, /readyz and /metrics on its port)."""
        ports = self._health_ports()
        return {"FIML_HEALTH_PORT": str(ports[name])} if name in ports else {}

    def _health_ports(self) -> dict[str, int]:
        return {
            "ingest": self.settings.up_ingest_health_port,
            "arbitrate": self.settings.up_arbitration_health_port,
            ALERTS: self.settings.up_alerts_health_port,
            WEBHOOKS: self.settings.up_webhooks_health_port,
        }

    def _await_gateway(self, timeout: float = 60.0) -> None:
        host, port = self.settings.gateway_host, self.settings.gateway_port
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.stopping and self._dead() is None:
            try:
                socket.create_connection((host, port), timeout=0.5).close()
            except OSError:
                time.sleep(0.2)
                continue
            print(
                f"FIML streaming is up: ws://{host}:{port}/ws/stream, "
                f"http://{host}:{port}/ws/connections (Ctrl-C stops it)",
                flush=True,
            )
            metrics = [f"http://{host}:{port}/metrics"] + [
                f"http://{self.settings.health_host}:{health}/metrics"
                for name, health in self._health_ports().items()
                if health and name in self.services
            ]
            print(f"metrics: {', '.join(metrics)}", flush=True)
            return

    def _dead(self) -> str | None:
        for name, process in self.services.items():
            if process.poll() is not None:
                return name
        if self.broker is not None and self.broker.poll() is not None:
            return "kafka"
        if self.registry is not None and self.registry.poll() is not None:
            return "registry"
        return None

    def _watch(self) -> int:
        while not self.stopping:
            dead = self._dead()
            if dead is not None:
                print(
                    f"fiml up: {dead} exited unexpectedly; stopping everything",
                    file=sys.stderr,
                    flush=True,
                )
                return 1
            time.sleep(0.2)
        return 0

    def _stop_all(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_IGN)
        for name in reversed(self.names()):
            process = self.services.get(name)
            if process is not None:
                stop_process(process)
        if self.registry is not None:
            stop_process(self.registry, timeout=30)
        if self.broker is not None:
            stop_process(self.broker, timeout=30)
        print("fiml up: stopped", flush=True)
