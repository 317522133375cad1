"""A client session that also speaks alerts: the ``alerts`` stream of the caller's fired
alerts, and ``alert_create`` / ``alert_delete`` answered by ``alert_ack`` or an
``ALERT_ERROR`` frame (docs/protocol.md, "Alerts")."""

from __future__ import annotations

import asyncio

import orjson
from starlette.websockets import WebSocket

from domain.alerts.delivery import alert_document
from domain.alerts.rules import InvalidRule, rule_view
from gateway.alert_protocol import AlertCreate, AlertDelete, AlertsSubscribe, AlertsUnsubscribe
from gateway.alerts import AlertBook, AlertsUnavailable
from gateway.protocol import ClientMessage, ErrorCode, SubscribeRequest, error_frame
from gateway.security import caller_owner
from gateway.session import ClientSession
from gateway.shared import Shared
from runtime.clock import now_iso
from schemas.alerts import FiredAlert

ALERTS_SUBSCRIPTION = "alerts"


def _json(message: dict[str, object]) -> str:
    return orjson.dumps(message).decode()


class AlertingSession(ClientSession):
    """A :class:`ClientSession` of one owner, with the alert messages."""

    def __init__(self, websocket: WebSocket, shared: Shared, book: AlertBook) -> None:
        super().__init__(websocket, shared)
        self.book = book
        self.owner = caller_owner(shared.settings, websocket)
        self.alerts_seq: int | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    async def serve(self, first: SubscribeRequest | None = None) -> None:
        """Serve the connection; its alerts stream and pending alert requests end with it."""
        try:
            await super().serve(first)
        finally:
            self.book.unlisten(self.owner, self._alert)
            for task in self.tasks:
                task.cancel()

    def _apply(self, request: ClientMessage) -> None:
        if isinstance(request, AlertsSubscribe):
            if self.alerts_seq is None:
                self.alerts_seq = 0
                self.book.listen(self.owner, self._alert)
            self.send(self._stream_frame("subscription_ack", interval_ms=0))
        elif isinstance(request, AlertsUnsubscribe):
            self.book.unlisten(self.owner, self._alert)
            ended = [] if self.alerts_seq is None else [ALERTS_SUBSCRIPTION]
            self.alerts_seq = None
            self.send(self._stream_frame("unsubscribe_ack", subscription_ids=ended))
        elif isinstance(request, AlertCreate | AlertDelete):
            task = asyncio.create_task(self._change(request))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        else:
            super()._apply(request)

    def _stream_frame(self, kind: str, **fields: object) -> str:
        return _json(
            {
                "type": kind,
                "stream_type": "alerts",
                "symbols": [],
                "subscription_id": ALERTS_SUBSCRIPTION,
                **fields,
                "timestamp": now_iso(),
            }
        )

    async def _change(self, request: AlertCreate | AlertDelete) -> None:
        try:
            if isinstance(request, AlertCreate):
                rule = await self.book.create(self.owner, request.rule)
                action = "created"
            else:
                rule = await self.book.delete(self.owner, request.rule_id)
                action = "deleted"
        except (InvalidRule, AlertsUnavailable) as error:
            self.send(error_frame(ErrorCode.ALERT_ERROR, str(error)))
            return
        ack: dict[str, object] = {
            "type": "alert_ack",
            "action": action,
            "request_id": request.request_id,
            "rule": self.book.created_view(rule) if action == "created" else rule_view(rule),
            "timestamp": now_iso(),
        }
        self.send(_json(ack))

    def _alert(self, alert: FiredAlert) -> None:
        if self.alerts_seq is None:
            return
        self.alerts_seq += 1
        frame = {
            "type": "data",
            "stream_type": "alerts",
            "subscription_id": ALERTS_SUBSCRIPTION,
            "timestamp": now_iso(),
            "seq": self.alerts_seq,
            "data": [alert_document(alert)],
        }
        self.send(_json(frame))
