"""Arbitration between providers: a pure engine and the Faust app around it."""
