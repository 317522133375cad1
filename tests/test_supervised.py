"""A service that ``fiml up`` started ends its grace after ``fiml up`` is gone, even when
its own stop never ends (``runtime/processes.py``: exit_when_orphaned)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from runtime.processes import pid_alive

# A service whose stop never ends: it ignores SIGTERM.
SERVICE = """
import signal, sys, time
from runtime.processes import exit_when_orphaned
signal.signal(signal.SIGTERM, signal.SIG_IGN)
exit_when_orphaned(int(sys.argv[1]), grace=1.0)
print("armed", flush=True)
time.sleep(120)
"""
# A supervisor that starts it and waits.
SUPERVISOR = """
import os, subprocess, sys
service = subprocess.Popen(
    [sys.executable, "-c", sys.argv[1], str(os.getpid())], stdout=subprocess.PIPE
)
assert service.stdout.readline() == b"armed\\n"
print(service.pid, flush=True)
sys.stdin.read()
"""
ROOT = Path(__file__).resolve().parents[1]


def test_a_service_whose_stop_hangs_ends_its_grace_after_the_supervisor_was_killed() -> None:
    supervisor = subprocess.Popen(
        [sys.executable, "-c", SUPERVISOR, SERVICE],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=ROOT,
    )
    assert supervisor.stdout is not None
    service = int(supervisor.stdout.readline())
    try:
        assert pid_alive(service)
        supervisor.kill()
        supervisor.wait()
        time.sleep(0.3)
        assert pid_alive(service), "the service ended before its grace"
        deadline = time.monotonic() + 15
        while pid_alive(service) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not pid_alive(service), "the orphaned service outlived its grace"
    finally:
        if pid_alive(service):
            os.kill(service, signal.SIGKILL)
