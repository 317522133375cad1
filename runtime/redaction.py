"""Secrets out of log lines: the values of credential query parameters (``api_key=``,
``apikey=``, ``token=``, ...) in any text, for example uvicorn's access log of a path with
its query string, or an HTTP client's log of a provider URL."""

from __future__ import annotations

import logging
import re

MASK = "***"

# A query parameter whose value is a credential, anywhere in a line; the value runs to the
# next separator of a URL or of a log line.
_SECRET_PARAMETER = re.compile(
    r"(?i)([?&;](?:api[_-]?key|apikey|access[_-]?token|token|password|secret)=)[^&;\s\"'#]*"
)


def redact(text: str) -> str:
    """``text`` with the value of every credential query parameter masked."""
    return _SECRET_PARAMETER.sub(rf"\g<1>{MASK}", text)


class RedactingFilter(logging.Filter):
    """Masks credential query parameters in every record a handler writes."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = redact(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True
