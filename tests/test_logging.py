"""Log lines: JSON when standard error is not a terminal, text on request."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from runtime.settings import Settings
from runtime.settings_checks import SettingsError

EMIT = (
    "import logging, sys; from runtime.service import configure_logging; "
    "configure_logging('info', sys.argv[1]); log = logging.getLogger('fiml.test'); "
    "log.info('started with %s', 'context', "
    "extra={'symbol': 'AAPL', 'provider': 'synthetic'}); "
    "log.debug('not shown')\n"
    "try:\n    1 / 0\nexcept ZeroDivisionError:\n    log.exception('failed')"
)


def emitted(log_format: str) -> list[str]:
    """The standard-error lines of a child process that logs twice in ``log_format``."""
    done = subprocess.run(
        [sys.executable, "-c", EMIT, log_format], capture_output=True, text=True, check=True
    )
    return done.stderr.splitlines()


@pytest.mark.parametrize("log_format", ["auto", "json"])
def test_json_lines_carry_component_and_context(log_format):
    first, *rest = emitted(log_format)
    line = json.loads(first)
    assert line["component"] == "fiml.test" and line["level"] == "INFO"
    assert line["message"] == "started with context"
    assert (line["symbol"], line["provider"]) == ("AAPL", "synthetic")
    assert line["time"].endswith("+00:00")
    [failure] = [json.loads(text) for text in rest]
    assert failure["level"] == "ERROR" and "ZeroDivisionError" in failure["exception"]
    assert "symbol" not in failure


def test_text_lines_keep_the_terminal_format():
    first = emitted("text")[0]
    assert " INFO fiml.test: started with context" in first and not first.startswith("{")


def test_the_log_format_setting_is_checked():
    assert Settings.from_env({}).log_format == "auto"
    assert Settings.from_env({"FIML_LOG_FORMAT": "json"}).log_format == "json"
    with pytest.raises(SettingsError, match="FIML_LOG_FORMAT"):
        Settings.from_env({"FIML_LOG_FORMAT": "xml"})
