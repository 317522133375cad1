"""The client messages of alerts (docs/protocol.md, "Alerts"): the ``alerts`` stream's
subscribe and unsubscribe, ``alert_create`` and ``alert_delete``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ALERTS_STREAM = "alerts"
RequestId = Annotated[str, Field(min_length=1, max_length=64)]


class AlertsSubscribe(BaseModel):
    """``{"type": "subscribe", "stream_type": "alerts"}``: the caller's fired alerts."""

    model_config = ConfigDict(frozen=True, extra="forbid", title="subscribe_alerts")

    type: Literal["subscribe"]
    stream_type: Literal["alerts"]


class AlertsUnsubscribe(BaseModel):
    """``{"type": "unsubscribe", "stream_type": "alerts"}``: end the alerts stream."""

    model_config = ConfigDict(frozen=True, extra="forbid", title="unsubscribe_alerts")

    type: Literal["unsubscribe"]
    stream_type: Literal["alerts"]
    symbols: None = None


class AlertCreate(BaseModel):
    """``{"type": "alert_create", "rule": {...}}``: a new rule of the caller (the REST body)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["alert_create"]
    rule: dict[str, Any]
    request_id: RequestId | None = None


class AlertDelete(BaseModel):
    """``{"type": "alert_delete", "rule_id": "..."}``: delete one of the caller's rules."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["alert_delete"]
    rule_id: Annotated[str, Field(min_length=1, max_length=64)]
    request_id: RequestId | None = None


AlertMessage = AlertsSubscribe | AlertsUnsubscribe | AlertCreate | AlertDelete
ALERT_MESSAGES: tuple[type[BaseModel], ...] = (
    AlertsSubscribe,
    AlertsUnsubscribe,
    AlertCreate,
    AlertDelete,
)
