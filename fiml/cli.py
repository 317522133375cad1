"""The ``fiml`` command: run the system, its services and the local Kafka broker."""

from __future__ import annotations

import asyncio
import gc
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from fiml.alerts_cli import alerts_app
from fiml.command_settings import command_settings, service_settings, time_option
from fiml.registry_cli import registry_app
from runtime.broker import KafkaRuntimeError, LocalKafka
from runtime.processes import SUPERVISOR_VARIABLE, exit_when_orphaned
from runtime.registry import RegistryRuntimeError
from runtime.registry_client import RegistryError
from runtime.service import run_until_signalled
from schemas.symbols import InvalidSymbol, canonical_symbol

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="FIML streaming: real-time market data on Apache Kafka.",
)
kafka_app = typer.Typer(no_args_is_help=True, help="The local single-node Kafka broker.")
topics_app = typer.Typer(no_args_is_help=True, help="The project's Kafka topics.")
app.add_typer(kafka_app, name="kafka")
app.add_typer(topics_app, name="topics")
app.add_typer(registry_app, name="registry")
app.add_typer(alerts_app, name="alerts")

ProvidersOption = Annotated[
    str | None, typer.Option(help="Comma-separated providers (default: FIML_PROVIDERS).")
]


def _providers(value: str | None) -> tuple[str, ...] | None:
    return None if value is None else tuple(p.strip() for p in value.split(",") if p.strip())


@app.command()
def up(
    providers: ProvidersOption = None,
    registry: Annotated[
        bool,
        typer.Option(
            "--registry",
            help="Also run the local schema registry (seeded with the codec's ids) and "
            "register with it (FIML_SCHEMA_REGISTRY_URL).",
        ),
    ] = False,
) -> None:
    """Run everything on this machine: Kafka, topics, ingest, arbitration, alerts, gateway."""
    from fiml.supervisor import Supervisor

    settings = command_settings(providers=_providers(providers))
    try:
        code = Supervisor(settings, with_registry=registry).run()
    except (KafkaRuntimeError, RegistryRuntimeError, RegistryError) as error:
        typer.echo(f"fiml up: {error}", err=True)
        code = 1
    raise typer.Exit(code)


@kafka_app.command("fetch")
def kafka_fetch() -> None:
    """Resolve the broker's jars from Maven Central into the cache (once)."""
    typer.echo(LocalKafka(command_settings()).fetch_jars())


@kafka_app.command("start")
def kafka_start() -> None:
    """Start the local broker in the background and wait until it is ready."""
    local = LocalKafka(command_settings())
    try:
        process = local.start()
    except KafkaRuntimeError as error:
        typer.echo(f"fiml kafka start: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"Kafka ready on {local.bootstrap} (pid {process.pid}, log {local.log_file})")
    if local.settings.kafka_security_protocol.endswith("SSL"):
        typer.echo(f"clients trust its CA: FIML_KAFKA_SSL_CAFILE={local.tls.ca_pem}")


@kafka_app.command("stop")
def kafka_stop() -> None:
    """Stop the broker that ``fiml kafka start`` began."""
    local = LocalKafka(command_settings())
    typer.echo("stopped" if local.stop() else "no broker was running")


@kafka_app.command("status")
def kafka_status() -> None:
    """Say whether the local broker runs; exit code 3 if it does not."""
    local = LocalKafka(command_settings())
    pid = local.running_pid()
    if pid is None:
        typer.echo(f"not running (data: {local.data_dir})")
        raise typer.Exit(3)
    typer.echo(f"running on {local.bootstrap} (pid {pid}, data: {local.data_dir})")


@topics_app.command("create")
def topics_create() -> None:
    """Create every topic with its partitions and retention; existing ones are kept."""
    from runtime.topics import create_topics

    settings = service_settings()
    created = asyncio.run(create_topics(settings))
    for spec in settings.topics().values():
        state = "created" if spec.name in created else "exists"
        typer.echo(f"{spec.name}: {state} ({spec.partitions} partitions)")


@app.command()
def ingest(providers: ProvidersOption = None) -> None:
    """Run the ingest service: providers to fiml.ticks.raw and fiml.provider.status."""
    from ingest.service import run_ingest

    settings = service_settings(providers=_providers(providers))
    run_until_signalled(lambda stop: run_ingest(settings, stop))


@app.command()
def arbitrate() -> None:
    """Run the arbitration worker (Faust): fiml.ticks.raw to quotes, candles, trades, DLQ."""
    from arbitration.app import build_app
    from arbitration.faust_worker import run_worker

    run_worker(service_settings(), build_app)


def _speed(value: str) -> float | None:
    if value == "max":
        return None
    try:
        speed = float(value)
    except ValueError:
        speed = -1.0
    if not 0 < speed <= 1000:
        raise typer.BadParameter("a number above 0 and at most 1000, or max", param_hint="--speed")
    return speed


@app.command()
def replay(
    stream: Annotated[str, typer.Option(help="quotes, candles, trades, raw or news.")],
    symbols: Annotated[str, typer.Option(help="Comma-separated symbols.")],
    start: Annotated[str, typer.Option(help="ISO 8601 event time to start at.")],
    end: Annotated[
        str | None,
        typer.Option(
            help="ISO 8601 event time to end at (inclusive); without it, follow the topic live "
            "until Ctrl-C or SIGTERM."
        ),
    ] = None,
    timeframe: Annotated[str | None, typer.Option(help="Candles only: 1s, 1m, 5m...")] = None,
    speed: Annotated[
        str, typer.Option(help="1 = original pace, 10 = ten times faster, max = at once.")
    ] = "max",
    fmt: Annotated[str, typer.Option("--format", help="jsonl or csv.")] = "jsonl",
    out: Annotated[Path | None, typer.Option(help="Output file (default: stdout).")] = None,
) -> None:
    """Write a topic's records for a time range in event-time order, then, without --end,
    the new ones as they arrive until Ctrl-C or SIGTERM."""
    from fiml.export import FORMATS, export
    from fiml.terminal import progress_bar
    from runtime.replay_request import ReplayError, ReplayRequest

    if fmt not in FORMATS:
        raise typer.BadParameter(f"one of {', '.join(FORMATS)}", param_hint="--format")
    settings = service_settings()
    try:
        names = [canonical_symbol(s) for s in symbols.split(",") if s.strip()]
    except InvalidSymbol as error:
        raise typer.BadParameter(str(error), param_hint="--symbols") from None
    begin = time_option(start, "--start")
    finish = None if end is None else time_option(end, "--end")
    request = ReplayRequest(stream, tuple(names), begin, finish, timeframe, _speed(speed))
    target = sys.stdout if out is None else out.open("w", newline="")
    show = sys.stderr.isatty() and (out is not None or sys.stdout.isatty())
    count, interrupted = 0, False

    async def write(stop: asyncio.Event) -> None:
        nonlocal count, interrupted
        count = await export(settings, request, target, fmt, progress=progress, stop=stop)
        interrupted = finish is not None and stop.is_set()

    try:
        with progress_bar(show, f"replay {stream}") as progress:
            run_until_signalled(write)
    except ReplayError as error:
        typer.echo(f"fiml replay: {error}", err=True)
        raise typer.Exit(2) from None
    finally:
        if out is not None:
            target.close()
    if show:
        typer.echo(f"{count} records", err=True)
    if interrupted:
        raise typer.Exit(130)


@app.command()
def rebuild(
    prefix: Annotated[
        str | None,
        typer.Option(
            help="Topic prefix of the rebuilt topics (default: <FIML_TOPIC_PREFIX>-rebuild)."
        ),
    ] = None,
    verify: Annotated[
        bool,
        typer.Option(
            "--verify",
            help="Compare with the live topics record by record; exit 1 if they differ.",
        ),
    ] = False,
) -> None:
    """Replay fiml.ticks.raw and fiml.provider.status through the engine into other topics."""
    from arbitration.rebuild import rebuild as run_rebuild
    from fiml.terminal import progress_bar

    settings = service_settings()
    target = prefix or f"{settings.topic_prefix}-rebuild"
    with progress_bar(sys.stderr.isatty(), "rebuild") as progress:
        report = asyncio.run(run_rebuild(settings, target, verify=verify, progress=progress))
    typer.echo(report.summary())
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def gateway(
    host: Annotated[str | None, typer.Option(help="Listen address (FIML_GATEWAY_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (FIML_GATEWAY_PORT).")] = None,
) -> None:
    """Run the WebSocket gateway under uvicorn."""
    import uvicorn

    from gateway.app import create_app

    settings = service_settings(gateway_host=host, gateway_port=port)
    app = create_app(settings)
    gc.freeze()  # the objects of start-up live as long as the process: the collector skips them
    uvicorn.run(
        app,
        host=settings.gateway_host,
        port=settings.gateway_port,
        log_level=settings.log_level,
        log_config=None,
        ws="websockets-sansio",
        ws_max_size=max(1 << 20, 4 * settings.max_message_bytes),
    )


def main() -> None:
    """Entry point of the ``fiml`` console script; a service ``fiml up`` started ends at
    most ``ORPHAN_GRACE_S`` after ``fiml up`` is gone, however its stop goes."""
    supervisor = os.environ.get(SUPERVISOR_VARIABLE)
    if supervisor:
        exit_when_orphaned(int(supervisor))
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
