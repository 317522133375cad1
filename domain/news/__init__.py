"""News deduplication across providers and polls: pure, deterministic from the log."""
