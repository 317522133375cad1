"""``fiml registry``: the local schema registry (Apicurio Registry, Confluent API)."""

from __future__ import annotations

from typing import Annotated

import typer

from fiml.command_settings import command_settings
from runtime.registry import LocalRegistry, RegistryRuntimeError

registry_app = typer.Typer(
    no_args_is_help=True, help="The local schema registry (Apicurio Registry, Confluent API)."
)


@registry_app.command("fetch")
def registry_fetch() -> None:
    """Build the registry from Maven Central into the cache (once)."""
    try:
        typer.echo(LocalRegistry.of(command_settings()).fetch())
    except RegistryRuntimeError as error:
        typer.echo(f"fiml registry fetch: {error}", err=True)
        raise typer.Exit(1) from None


@registry_app.command("start")
def registry_start() -> None:
    """Start the local registry in the background, seeded with the codec's fixed ids when
    it is empty, and wait until it is ready."""
    from schemas.registry_plan import codec_versions

    settings = command_settings()
    local = LocalRegistry.of(settings)
    try:
        process = local.start()
        seeded = local.seed(codec_versions(settings.topic))
    except RegistryRuntimeError as error:
        typer.echo(f"fiml registry start: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"registry ready: FIML_SCHEMA_REGISTRY_URL={local.ccompat_url} (pid {process.pid}, "
        f"{'seeded' if seeded else 'kept its subjects'}, log {local.log_file})"
    )


@registry_app.command("stop")
def registry_stop() -> None:
    """Stop the registry that ``fiml registry start`` began."""
    local = LocalRegistry.of(command_settings())
    typer.echo("stopped" if local.stop() else "no registry was running")


@registry_app.command("status")
def registry_status() -> None:
    """Say whether the local registry runs; exit code 3 if it does not."""
    local = LocalRegistry.of(command_settings())
    pid = local.running_pid()
    if pid is None:
        typer.echo(f"not running (data: {local.data_dir})")
        raise typer.Exit(3)
    typer.echo(f"running at {local.ccompat_url} (pid {pid}, data: {local.data_dir})")


@registry_app.command("seed")
def registry_seed(
    url: Annotated[
        str | None,
        typer.Option(
            help="Root URL of an Apicurio Registry 2.x (default: the local registry), e.g. "
            "http://registry:8080."
        ),
    ] = None,
) -> None:
    """Give an empty Apicurio registry the codec's schemas with their fixed ids, so records
    written without a registry resolve through it; a registry with subjects is left as is."""
    from runtime.registry import seed_apicurio
    from schemas.registry_plan import codec_versions

    settings = command_settings()
    root = url or LocalRegistry.of(settings).url
    try:
        seeded = seed_apicurio(root, codec_versions(settings.topic))
    except RegistryRuntimeError as error:
        typer.echo(f"fiml registry seed: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo("seeded" if seeded else "the registry has subjects already: left as it is")
