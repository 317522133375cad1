"""Where a webhook may go: its URL when a rule is made, its address when the worker connects."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2048


def webhook_url_problem(url: object) -> str | None:
    """What is wrong with a webhook URL, or None for https (not to a private address) or
    http to 127.0.0.1."""
    if not isinstance(url, str) or not 0 < len(url) <= MAX_URL_LENGTH:
        return f"webhook_url must be a URL of at most {MAX_URL_LENGTH} characters"
    if any(ord(char) <= 32 or ord(char) == 127 for char in url):
        return "webhook_url must not contain spaces or control characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a port out of range)
    except ValueError as error:
        return f"webhook_url is not a valid URL: {error}"
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "webhook_url must be https://host/..., or http://127.0.0.1/..."
    if "@" in parts.netloc or parts.fragment:
        return "webhook_url must not carry credentials or a fragment"
    if parts.scheme == "http" and parts.hostname != "127.0.0.1":
        return "webhook_url over plain http is allowed only to 127.0.0.1; use https"
    if parts.scheme == "https" and not _public_or_name(parts.hostname):
        return "webhook_url must not point to a private, loopback or local address"
    return None


def destination_allowed(url: str, address: str) -> bool:
    """Whether the webhook may connect to ``address``, what the URL's host resolved to.

    https: only a global (public) address; http: only 127.0.0.1. Checked on every
    connection, after resolution, so a name cannot lead into a private network.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if urlsplit(url).scheme == "http":
        return str(ip) == "127.0.0.1"
    return ip.is_global


def _public_or_name(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_global
    except ValueError:
        return True
