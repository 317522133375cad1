"""``python -m fiml.health URL``: probe a health endpoint for container health checks; exit
code 0 when it answers 200, else 1."""

from __future__ import annotations

import sys
import urllib.error
import urllib.request


def probe(url: str, timeout: float = 3.0) -> bool:
    """Whether ``url`` answers 200 within ``timeout`` seconds."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def main(argv: list[str]) -> int:
    """``python -m fiml.health URL``: exit code 0 if the endpoint answers 200, else 1."""
    if len(argv) != 1:
        print("usage: python -m fiml.health URL", file=sys.stderr)
        return 2
    return 0 if probe(argv[0]) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
