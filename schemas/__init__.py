"""The contract between the services: Avro schemas, typed records, codec, symbols."""

from schemas.codec import DecodeError, decode, encode
from schemas.records import Candle, ProviderStatus, Quote, RawTick, Trade

__all__ = [
    "Candle",
    "DecodeError",
    "ProviderStatus",
    "Quote",
    "RawTick",
    "Trade",
    "decode",
    "encode",
]
