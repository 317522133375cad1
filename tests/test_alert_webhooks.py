"""Webhook delivery (arbitration/webhooks.py, arbitration/webhook_worker.py) against a
receiver on 127.0.0.1 started by the test: signed POSTs, retries on 5xx and timeouts, a
dead letter for a rejection and after the last try, the per-owner rate limit, and the
worker reading fiml.alerts.fired and writing fiml.alerts.webhooks.dlq on the real broker."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time

import pytest

from arbitration.webhook_worker import WebhookWorker
from arbitration.webhooks import WebhookSender, pinned
from domain.alerts.delivery import (
    ALERT_ID_HEADER,
    SIGNATURE_HEADER,
    RateLimiter,
    RetryPolicy,
    rule_secret,
    verify,
    webhook_body,
)
from runtime.testing import free_port
from schemas.alerts import FiredAlert, WebhookDeadLetter
from tests.support import poll_until
from tests.support_kafka import produce, read_topic
from tests.support_webhooks import serving_receiver

SECRET = b"server-secret-for-tests"
FAST = RetryPolicy(attempts=3, first_delay_s=0.01, factor=2.0, timeout_s=0.3)
UNLIMITED = RateLimiter(per_second=1000.0, burst=1000.0)


@pytest.fixture
async def receiver():
    """A receiver on 127.0.0.1: yields (it, its base URL)."""
    async with serving_receiver() as served:
        yield served


def alert(url: str, number: int = 1, owner: str = "anonymous") -> FiredAlert:
    """A fired alert of rule r1 with a webhook to ``url``, fired just now."""
    now = int(time.time() * 1_000_000)
    return FiredAlert(
        f"{number:032x}",
        "r1",
        owner,
        "price_above",
        "AAPL",
        now,
        {"price": 101.0, "level": 100.0},
        "AAPL at 101 is above 100",
        "fiml.quotes",
        0,
        number,
        url,
    )


@contextlib.asynccontextmanager
async def sender(policy=FAST, limiter=UNLIMITED):
    made = WebhookSender(SECRET, policy, dataclasses.replace(limiter, buckets={}))
    try:
        yield made
    finally:
        await made.close()


async def test_a_delivery_is_signed_and_names_the_alert(receiver):
    state, base = receiver
    fired = alert(f"{base}/ok")
    async with sender() as webhooks:
        assert await webhooks.deliver(fired) is None
    [(_, headers, body)] = state.received
    assert body == webhook_body(fired)
    assert headers[ALERT_ID_HEADER.lower()] == fired.alert_id
    secret = rule_secret(SECRET, "r1")
    assert verify(secret, body, headers[SIGNATURE_HEADER.lower()], int(time.time()))
    assert not verify(b"another secret", body, headers[SIGNATURE_HEADER.lower()], int(time.time()))


async def test_a_try_connects_to_the_address_it_checked(receiver, monkeypatch):
    """DNS rebinding: the name resolves once, to an allowed address, and the POST goes there
    with the name as its Host; a second lookup (which would answer a private address, or
    nothing: the name is not in any DNS) is never made."""
    state, base = receiver
    port = base.rsplit(":", 1)[1]
    loop = asyncio.get_running_loop()
    looked_up: list[str] = []
    system_lookup = loop.getaddrinfo

    async def rebinding(host, *args, **kwargs):
        if host != "hooks.rebind.test":
            return await system_lookup(host, *args, **kwargs)
        looked_up.append(host)
        address = "127.0.0.1" if len(looked_up) == 1 else "10.0.0.1"
        return [(2, 1, 6, "", (address, int(port)))]

    monkeypatch.setattr(loop, "getaddrinfo", rebinding)
    async with sender() as webhooks:
        assert await webhooks.deliver(alert(f"http://hooks.rebind.test:{port}/ok")) is None
    assert looked_up == ["hooks.rebind.test"]
    [(_, headers, _)] = state.received
    assert headers["host"] == f"hooks.rebind.test:{port}"


def test_a_pinned_url_keeps_the_name_for_host_and_tls():
    assert pinned("https://hooks.example.com/a?b=1", "93.184.216.34") == (
        "https://93.184.216.34/a?b=1",
        "hooks.example.com",
        {"sni_hostname": "hooks.example.com"},
    )
    assert pinned("https://hooks.example.com:8443/a", "2606:2800:220:1::1") == (
        "https://[2606:2800:220:1::1]:8443/a",
        "hooks.example.com:8443",
        {"sni_hostname": "hooks.example.com"},
    )
    assert pinned("http://127.0.0.1:9000/x", "127.0.0.1") == (
        "http://127.0.0.1:9000/x",
        "127.0.0.1:9000",
        {},
    )


async def test_5xx_is_retried_until_delivered(receiver):
    state, base = receiver
    async with sender() as webhooks:
        assert await webhooks.deliver(alert(f"{base}/flaky")) is None
    assert state.tries["/flaky"] == 3
    assert len(state.received) == 1


async def test_a_rejection_is_a_dead_letter_at_once(receiver):
    state, base = receiver
    fired = alert(f"{base}/reject")
    async with sender() as webhooks:
        dead = await webhooks.deliver(fired)
    assert dead is not None
    assert (dead.reason, dead.attempts, dead.last_status) == ("rejected", 1, 404)
    assert dead.body == webhook_body(fired) and dead.alert_id == fired.alert_id
    assert state.tries["/reject"] == 1


async def test_a_receiver_that_never_answers_is_tried_then_dead_lettered(receiver):
    state, base = receiver
    async with sender() as webhooks:
        dead = await webhooks.deliver(alert(f"{base}/slow"))
    assert dead is not None
    assert (dead.reason, dead.attempts, dead.last_status) == ("exhausted", 3, None)
    assert "Timeout" in (dead.last_error or "")
    assert state.tries["/slow"] == 3


async def test_nothing_listening_is_retried_then_dead_lettered():
    async with sender() as webhooks:
        dead = await webhooks.deliver(alert(f"http://127.0.0.1:{free_port()}/gone"))
    assert dead is not None and (dead.reason, dead.attempts) == ("exhausted", 3)
    assert dead.last_error


async def test_an_old_alert_expires_unsent(receiver):
    state, base = receiver
    old = dataclasses.replace(alert(f"{base}/ok"), ts_event=1_000_000)
    async with sender() as webhooks:
        dead = await webhooks.deliver(old)
    assert dead is not None and (dead.reason, dead.attempts) == ("expired", 0)
    assert state.tries["/ok"] == 0


async def test_one_owner_is_held_to_its_rate_and_another_is_not(receiver):
    state, base = receiver
    limiter = RateLimiter(per_second=10.0, burst=1.0)
    async with sender(limiter=limiter) as webhooks:
        began = time.monotonic()
        for number in range(3):
            assert await webhooks.deliver(alert(f"{base}/ok", number, owner="k_busy")) is None
        held = time.monotonic() - began
        assert await webhooks.deliver(alert(f"{base}/ok", 9, owner="k_other")) is None
    assert held >= 0.18  # two waits of 0.1 s: the third delivery waited for its tokens
    assert len(state.received) == 4


async def test_the_worker_delivers_dead_letters_and_commits(topics, receiver):
    settings = topics
    state, base = receiver
    fired = [alert(f"{base}/ok", 1), alert(f"{base}/reject", 2), alert(f"{base}/ok", 3)]
    fired[2] = dataclasses.replace(fired[2], webhook_url=None)
    await produce(settings, "alerts.fired", fired, key=b"k", partition=0)
    async with sender() as webhooks:
        worker = WebhookWorker(settings, webhooks)
        task = asyncio.create_task(worker.run())
        try:
            await poll_until(lambda: worker.delivered + worker.dead == 2, within=30, interval=0.05)
            await asyncio.sleep(0.6)  # one more commit
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    assert [path for path, _, _ in state.received] == ["/ok"]
    dead = [
        record
        for _, _, record in await read_topic(settings, "alerts.webhooks.dlq", WebhookDeadLetter)
    ]
    assert [(d.alert_id, d.reason) for d in dead] == [(fired[1].alert_id, "rejected")]

    again = WebhookWorker(settings, WebhookSender(SECRET, FAST, UNLIMITED))
    task = asyncio.create_task(again.run())
    await asyncio.sleep(3)  # a restart finds everything committed: nothing is sent again
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await again.sender.close()
    assert state.tries["/ok"] == 1 and state.tries["/reject"] == 1


async def test_a_second_worker_shares_the_partitions_and_the_first_delivers_on(topics, receiver):
    """A rebalance takes partitions from a running worker: it commits only those it still
    holds (a commit of one taken away would fail and stop it), and every alert is delivered."""
    settings = topics
    state, base = receiver
    tasks = []
    async with sender() as first_sender, sender() as second_sender:
        first, second = (
            WebhookWorker(settings, first_sender),
            WebhookWorker(settings, second_sender),
        )
        try:
            tasks.append(asyncio.create_task(first.run()))
            await poll_until(first.ready, within=30)
            for partition in range(3):
                fired = [alert(f"{base}/ok", 10 * partition + n) for n in range(2)]
                await produce(settings, "alerts.fired", fired, key=b"k", partition=partition)
            await poll_until(lambda: first.delivered == 6, within=30, interval=0.05)
            tasks.append(asyncio.create_task(second.run()))
            await poll_until(
                lambda: second.ready() and first.ready() and len(held(first)) < 3, within=40
            )
            for partition in range(3):
                fired = [alert(f"{base}/ok", 100 + 10 * partition + n) for n in range(2)]
                await produce(settings, "alerts.fired", fired, key=b"k", partition=partition)
            await poll_until(
                lambda: first.delivered + second.delivered == 12, within=30, interval=0.05
            )
            await asyncio.sleep(1.2)  # two more commits of each
            assert not any(task.done() for task in tasks), [
                t.exception() for t in tasks if t.done()
            ]
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    assert len(state.received) == 12


def held(worker: WebhookWorker) -> set:
    """The partitions the group gives ``worker`` now."""
    return set() if worker.consumer is None else worker.consumer.assignment()


async def test_a_delivery_that_fails_is_tried_again_and_its_partition_committed(topics, receiver):
    settings = topics
    state, base = receiver
    await produce(settings, "alerts.fired", [alert(f"{base}/ok", 1)], key=b"k", partition=0)
    async with sender() as webhooks:
        deliver, failures = webhooks.deliver, []

        async def fails_once(fired: FiredAlert):
            if not failures:
                failures.append(fired.alert_id)
                raise RuntimeError("the receiver's resolver broke")
            return await deliver(fired)

        webhooks.deliver = fails_once  # type: ignore[method-assign]
        worker = WebhookWorker(settings, webhooks)
        task = asyncio.create_task(worker.run())
        try:
            await poll_until(lambda: worker.delivered == 1, within=30, interval=0.05)
            await poll_until(lambda: not worker.in_flight.get(held_one(worker)), within=5)
            await asyncio.sleep(0.6)  # one more commit
            committed = await worker.consumer.committed(held_one(worker))
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert failures and len(state.received) == 1
    assert committed == 1


def held_one(worker: WebhookWorker):
    """Partition 0 of alerts.fired as ``worker`` reads it."""
    return next(tp for tp in held(worker) if tp.partition == 0)
