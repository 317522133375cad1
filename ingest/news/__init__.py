"""News ingest: provider parsers into raw news items, the polling planner and the pollers."""
