"""What every FIML service process runs on: settings, Kafka clients and topics, the local
broker, health, metrics, logging, the log reader and the provider catalog."""
