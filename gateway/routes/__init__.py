"""The gateway's endpoints, one router each: WebSocket streams, REST history, provider
statuses, monitoring (connections, metrics, health); the dashboard is ``gateway/dashboard``."""
