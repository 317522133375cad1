"""Pure market-data logic that more than one service needs: order books, alerts and news.

Imports only the standard library and ``schemas``: no I/O, no clock, no Kafka.
"""
