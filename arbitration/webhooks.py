"""One alert's webhook delivery: signed POSTs with retries and backoff, a per-owner rate
limit, and the dead letter when it is given up (the rules are ``domain/alerts/delivery.py``).

The URL's host is resolved before every try and each address checked with
:func:`destination_allowed` (https: public addresses only; http: 127.0.0.1 only); a host
that resolves to a refused address is a failed try (no answer). The try then connects to an
address it checked, not to what DNS answers next (the Host header and, for https, the TLS
server name stay the URL's host), so a name that changes its answer in between cannot steer
a webhook to a refused address. Redirects are not followed.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

import httpx

from domain.alerts.delivery import (
    ALERT_ID_HEADER,
    SIGNATURE_HEADER,
    RateLimiter,
    RetryPolicy,
    next_step,
    rule_secret,
    signature,
    webhook_body,
)
from domain.alerts.webhooks import destination_allowed
from schemas.alerts import FiredAlert, WebhookDeadLetter

log = logging.getLogger("fiml.webhooks")

MAX_ERROR_CHARS = 200


class Refused(Exception):
    """The URL's host resolves to an address a webhook may not reach."""


class WebhookSender:
    """Delivers alerts to their rules' webhooks; ``deliver`` returns None or a dead letter."""

    def __init__(
        self,
        server_secret: bytes,
        policy: RetryPolicy | None = None,
        limiter: RateLimiter | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.server_secret = server_secret
        self.policy = policy or RetryPolicy()
        self.limiter = limiter or RateLimiter()
        self.clock = clock
        self.client = httpx.AsyncClient(timeout=self.policy.timeout_s, follow_redirects=False)

    async def close(self) -> None:
        """Close the HTTP client."""
        await self.client.aclose()

    async def deliver(self, alert: FiredAlert) -> WebhookDeadLetter | None:
        """Try until delivered (None) or given up (the dead letter to write)."""
        url = alert.webhook_url
        assert url is not None
        body = webhook_body(alert)
        secret = rule_secret(self.server_secret, alert.rule_id)
        first = last = self._micros()
        attempt, status, error = 0, None, None
        if self.policy.expired(alert, first):
            return self._dead(alert, body, "expired", 0, first, last, None, None)
        while True:
            wait = self.limiter.take(alert.owner, self._micros())
            while wait > 0:
                await asyncio.sleep(wait)
                wait = self.limiter.take(alert.owner, self._micros())
            attempt += 1
            last = self._micros()
            status, error, retry_after = await self._post(url, body, secret, alert.alert_id)
            step = next_step(self.policy, attempt, status, alert.alert_id, retry_after)
            if step.action == "delivered":
                return None
            if step.action == "dead":
                reason = step.reason or "exhausted"
                return self._dead(alert, body, reason, attempt, first, last, status, error)
            await asyncio.sleep(step.delay_s)

    async def _post(
        self, url: str, body: bytes, secret: bytes, alert_id: str
    ) -> tuple[int | None, str | None, float | None]:
        """One try: (HTTP status or None, what went wrong, Retry-After seconds)."""
        headers = {
            "Content-Type": "application/json",
            ALERT_ID_HEADER: alert_id,
            SIGNATURE_HEADER: signature(secret, body, int(self.clock())),
        }
        try:
            address = await self._checked_address(url)
            target, host, extensions = pinned(url, address)
            response = await self.client.post(
                target, content=body, headers={**headers, "Host": host}, extensions=extensions
            )
        except (httpx.HTTPError, OSError, Refused) as failure:
            return None, f"{type(failure).__name__}: {failure}"[:MAX_ERROR_CHARS], None
        retry_after = response.headers.get("retry-after", "")
        seconds = float(retry_after) if retry_after.isdigit() else None
        return response.status_code, None, seconds

    async def _checked_address(self, url: str) -> str:
        """An address of the URL's host, once every address it resolves to is allowed."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = sorted({str(info[4][0]) for info in found})
        refused = [address for address in addresses if not destination_allowed(url, address)]
        if not addresses or refused:
            raise Refused(f"{host} resolves to a refused address")
        return addresses[0]

    def _micros(self) -> int:
        return int(self.clock() * 1_000_000)

    @staticmethod
    def _dead(
        alert: FiredAlert,
        body: bytes,
        reason: str,
        attempts: int,
        first: int,
        last: int,
        status: int | None,
        error: str | None,
    ) -> WebhookDeadLetter:
        log.warning("webhook of alert %s given up: %s", alert.alert_id, reason)
        assert alert.webhook_url is not None
        return WebhookDeadLetter(
            alert.alert_id,
            alert.rule_id,
            alert.owner,
            alert.webhook_url,
            body,
            reason,
            attempts,
            first,
            last,
            status,
            error,
        )


def pinned(url: str, address: str) -> tuple[str, str, dict[str, object]]:
    """``url`` to ``address`` instead of its host, the Host header to send, and the request
    extensions (the TLS server name to verify, for https)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    literal = f"[{address}]" if ":" in address else address
    netloc = literal if parts.port is None else f"{literal}:{parts.port}"
    named = f"[{host}]" if ":" in host else host
    header = named if parts.port is None else f"{named}:{parts.port}"
    extensions: dict[str, object] = {"sni_hostname": host} if parts.scheme == "https" else {}
    return urlunsplit(parts._replace(netloc=netloc)), header, extensions
