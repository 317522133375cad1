"""``fiml alerts``: the alerts worker (``evaluate``), when a rule would have fired over a past
range of the log (``backtest``), and the webhook worker (``webhooks``)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer

alerts_app = typer.Typer(no_args_is_help=True, help="Alert rules.")


@alerts_app.command("evaluate")
def evaluate() -> None:
    """Run the alerts worker (Faust): rules evaluated over fiml.quotes, fiml.candles and
    fiml.provider.status, fired alerts to fiml.alerts.fired, until Ctrl-C or SIGTERM.
    /healthz, /readyz and /metrics on FIML_HEALTH_PORT (off while 0)."""
    from arbitration.alerts_app import build_alerts_app
    from arbitration.faust_worker import run_worker
    from fiml.command_settings import service_settings

    run_worker(service_settings(), build_alerts_app)


@alerts_app.command("backtest")
def backtest(
    rule: Annotated[
        str,
        typer.Option(
            help="The rule as JSON (the body of POST /v1/alerts), or @FILE to read it from FILE."
        ),
    ],
    start: Annotated[str, typer.Option(help="ISO 8601 event time to start at.")],
    end: Annotated[str, typer.Option(help="ISO 8601 event time to end at (inclusive).")],
) -> None:
    """Print, one JSON object a line, the alerts a rule fires from --start to --end, as the
    alerts agent would have fired them; a summary goes to stderr."""
    from domain.alerts.delivery import alert_document
    from domain.alerts.rules import ANONYMOUS, InvalidRule, parse_rule
    from fiml.command_settings import service_settings, time_option
    from runtime.alert_backtest import run_backtest
    from runtime.replay_request import ReplayError

    text = Path(rule[1:]).read_text() if rule.startswith("@") else rule
    try:
        data = json.loads(text)
        tried = parse_rule(data, rule_id="backtest", owner=ANONYMOUS, created_at=0, owner_rules=0)
    except (json.JSONDecodeError, InvalidRule) as error:
        raise typer.BadParameter(str(error), param_hint="--rule") from None
    begin, finish = time_option(start, "--start"), time_option(end, "--end")
    settings = service_settings()
    try:
        result = asyncio.run(run_backtest(settings, tried, begin, finish))
    except ReplayError as error:
        typer.echo(f"fiml alerts backtest: {error}", err=True)
        raise typer.Exit(2) from None
    for alert in result.alerts:
        typer.echo(json.dumps(alert_document(alert)))
    cut = " (cut: the record limit was reached)" if result.truncated else ""
    typer.echo(f"{len(result.alerts)} alerts over {result.records} records{cut}", err=True)


@alerts_app.command("webhooks")
def webhooks() -> None:
    """Deliver the webhooks of fired alerts (signed with FIML_ALERT_WEBHOOK_SECRET) until
    Ctrl-C or SIGTERM; what is given up goes to fiml.alerts.webhooks.dlq. /healthz, /readyz
    and /metrics on FIML_HEALTH_PORT (off while 0)."""
    from arbitration.webhook_worker import WebhookWorker
    from arbitration.webhooks import WebhookSender
    from fiml.command_settings import service_settings
    from runtime.health import serve_health
    from runtime.service import run_until_signalled, until_stopped

    settings = service_settings()
    if not settings.alert_webhook_secret:
        raise typer.BadParameter("set FIML_ALERT_WEBHOOK_SECRET: it signs every webhook")
    secret = settings.alert_webhook_secret.encode()

    async def serve(stop: asyncio.Event) -> None:
        sender = WebhookSender(secret)
        worker = WebhookWorker(settings, sender)
        progress = worker.progress
        async with serve_health(settings, worker.ready, progress.alive, worker.why_not_ready):
            try:  # until stopped, or the worker fails (raised, so the service exits)
                await until_stopped(worker.run(), stop)
            finally:
                await sender.close()

    run_until_signalled(serve)
