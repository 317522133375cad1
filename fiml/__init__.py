"""Shared parts of the FIML streaming services: settings, CLI, Kafka clients, local Kafka."""
