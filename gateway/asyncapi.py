"""The AsyncAPI 3.0 document of the WebSocket protocol, generated from the message models."""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from gateway.alert_protocol import ALERT_MESSAGES
from gateway.messages import SERVER_MESSAGES
from gateway.protocol import PingRequest, SubscribeRequest, UnsubscribeRequest

CLIENT_MESSAGES: tuple[type[BaseModel], ...] = (
    SubscribeRequest,
    UnsubscribeRequest,
    PingRequest,
    *ALERT_MESSAGES,
)


def _message_name(model: type[BaseModel]) -> str:
    """The message's ``type``, or the title of a model sharing its type with another."""
    title = model.model_config.get("title")
    return title or str(typing.get_args(model.model_fields["type"].annotation)[0])


def asyncapi_document(version: str, host: str) -> dict[str, Any]:
    """The AsyncAPI document for a gateway reachable at ``host`` (``host:port``)."""
    models = (*CLIENT_MESSAGES, *SERVER_MESSAGES)
    _, definitions = models_json_schema(
        [(model, "validation") for model in models], ref_template="#/components/schemas/{model}"
    )
    messages = {
        _message_name(model): {
            "name": _message_name(model),
            "title": model.__name__,
            "summary": (model.__doc__ or "").strip().splitlines()[0],
            "contentType": "application/json",
            "payload": {"$ref": f"#/components/schemas/{model.__name__}"},
        }
        for model in models
    }
    channel_messages = {name: {"$ref": f"#/components/messages/{name}"} for name in messages}
    channels = {
        "stream": {
            "address": "/ws/stream",
            "messages": channel_messages,
            "description": "The full protocol: subscribe, unsubscribe, ping, alerts.",
        },
        "prices": {
            "address": "/ws/prices/{symbols}",
            "messages": channel_messages,
            "parameters": {
                "symbols": {"description": "Comma-separated symbols, subscribed to price at once."}
            },
            "description": "Price updates without a subscribe message.",
        },
    }
    operations = {}
    for channel in channels:
        for model in models:
            name = _message_name(model)
            action = "receive" if model in CLIENT_MESSAGES else "send"
            operations[f"{channel}_{action}_{name}"] = {
                "action": action,
                "channel": {"$ref": f"#/channels/{channel}"},
                "messages": [{"$ref": f"#/channels/{channel}/messages/{name}"}],
            }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "FIML streaming WebSocket API",
            "version": version,
            "description": (
                "Real-time arbitrated prices, quotes, trades, OHLCV candles, order books, news "
                "and the caller's alerts."
            ),
        },
        "servers": {"gateway": {"host": host, "protocol": "ws"}},
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"schemas": definitions["$defs"], "messages": messages},
    }
