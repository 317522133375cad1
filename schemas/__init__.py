"""The contract between the services: Avro schemas, typed records, codec, symbols."""

from schemas.codec import DecodeError, decode, encode
from schemas.records import Candle, Demand, ProviderStatus, Quote, RawTick, Rejected, Trade

__all__ = [
    "Candle",
    "DecodeError",
    "Demand",
    "ProviderStatus",
    "Quote",
    "RawTick",
    "Rejected",
    "Trade",
    "decode",
    "encode",
]
