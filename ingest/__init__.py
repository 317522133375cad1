"""Provider adapters and the ingest service that writes their ticks to Kafka."""
