"""The WebSocket gateway: protocol, subscriptions, fan-out of arbitrated data."""
