"""Order books, pure: per-venue L2 books, the consolidated book, the gateway's stream protocol."""
