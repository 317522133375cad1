"""Order book ingest: venue book messages through ccxt.pro, and the synthetic venues' books."""
