"""The pure arbitration engine: raw ticks of one partition in, quotes, candles, trades and
rejections out. No I/O, no clock, no randomness; it imports only ``schemas`` and itself
(an import contract in ``pyproject.toml`` says so). The Kafka shell around it is the rest
of ``arbitration/``."""
