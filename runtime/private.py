"""Private attributes of third-party libraries the project relies on, read through one guard:
a release that took one away fails with a message naming the library and its installed
version, instead of an AttributeError deep in a service. The versions are pinned in
pyproject.toml; each use names what it needs and why."""

from __future__ import annotations

import importlib.metadata
from typing import Any


def private_attribute(owner: object, name: str, library: str) -> Any:
    """``owner.<name>``, a private attribute of ``library``; RuntimeError if it has none."""
    try:
        return getattr(owner, name)
    except AttributeError:
        version = importlib.metadata.version(library)
        raise RuntimeError(
            f"{library} {version} has no {type(owner).__name__}.{name}, which FIML relies "
            "on; install the version pyproject.toml pins"
        ) from None
