"""Child processes that never outlive the process that started them."""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

PR_SET_PDEATHSIG = 1
# The variable naming the supervisor's pid in a supervised service's environment, and how
# long such a service may take to stop once the supervisor is gone.
SUPERVISOR_VARIABLE = "FIML_SUPERVISOR_PID"
ORPHAN_GRACE_S = 20.0


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get SIGTERM when its parent dies (Linux only).

    It also covers the race where the parent is gone before the child set this up.
    """
    if not sys.platform.startswith("linux"):
        return None
    parent = os.getpid()
    libc = ctypes.CDLL(None, use_errno=True)

    def arm() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGTERM)

    return arm


def exit_when_orphaned(parent: int, grace: float = ORPHAN_GRACE_S) -> None:
    """End this process ``grace`` seconds after ``parent`` is gone.

    The parent's death sends SIGTERM (:func:`die_with_parent`) and a clean stop starts; a
    broker stopped at the same moment could hold that stop for its request timeouts, with
    nobody left to end it. Not armed in a process whose parent is already another one.
    """
    if os.getppid() != parent:
        return

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        time.sleep(grace)
        print(f"the supervisor {parent} is gone; stopping after {grace:.0f} s", file=sys.stderr)
        os._exit(1)

    threading.Thread(target=watch, name="orphan-watch", daemon=True).start()


def stop_process(process: subprocess.Popen[bytes], timeout: float = 20.0) -> int | None:
    """Send SIGTERM, wait up to ``timeout`` seconds, then SIGKILL. Returns the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"


def command_line(pid: int) -> str:
    """The command line of a process, or an empty string if it is gone."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def find_java() -> str | None:
    """The ``java`` of ``JAVA_HOME``, else the one on the PATH; None if there is none."""
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    return java if java and Path(java).exists() else None


def start_daemon(
    command: list[str],
    log_file: Path,
    pid_file: Path,
    *,
    stop_with_parent: bool,
    ready: Callable[[subprocess.Popen[bytes]], None],
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``command`` with its output appended to ``log_file`` and its id in ``pid_file``,
    and return once ``ready(process)`` returns; if it raises, the process is stopped.

    It runs in a session of its own, so a terminal's Ctrl-C reaches only its starter, which
    stops its clients first. With ``stop_with_parent`` it gets SIGTERM when this process
    dies; without, it runs on until :func:`stop_daemon`.
    """
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            preexec_fn=die_with_parent() if stop_with_parent else None,
            start_new_session=True,
        )
    pid_file.write_text(f"{process.pid}\n")
    try:
        ready(process)
    except BaseException:
        stop_process(process)
        raise
    return process


def daemon_pid(pid_file: Path, marker: str) -> int | None:
    """The id in ``pid_file`` if that process runs and its command line holds ``marker``."""
    try:
        pid = int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    if pid_alive(pid) and marker in command_line(pid):
        return pid
    return None


def stop_daemon(pid_file: Path, marker: str, timeout: float) -> bool:
    """Stop the daemon of ``pid_file`` (see :func:`daemon_pid`) and forget its id; False if
    none was running."""
    pid = daemon_pid(pid_file, marker)
    if pid is not None:
        stop_pid(pid, timeout)
    pid_file.unlink(missing_ok=True)
    return pid is not None


def stop_pid(pid: int, timeout: float) -> None:
    """Send SIGTERM to ``pid``, wait up to ``timeout`` seconds, then SIGKILL; return once
    it is gone."""
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            deadline = float("inf")
        time.sleep(0.1)


def tail(path: Path, lines: int = 30) -> str:
    """The last ``lines`` lines of a log file."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"
