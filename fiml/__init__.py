"""The ``fiml`` command: the CLI, ``fiml up``, ``fiml replay``'s export and the health probe."""
