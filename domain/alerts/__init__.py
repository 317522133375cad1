"""Alerts: rules validated from client input and evaluated on the event log, pure (no I/O)."""
