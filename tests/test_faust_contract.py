"""The faust-streaming internals batch delivery (``arbitration/batch_delivery.py``) relies on.

Two kinds of checks: the names and shapes must be there (attributes, signatures, behaviour),
and the bodies of the functions whose logic the batch path mirrors or depends on must be the
ones reviewed (source fingerprints). An upgrade that moves any of them fails here, loudly,
before a worker loses or reorders records; ``arbitration/README.md`` lists them. No broker.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import importlib
import importlib.metadata
import inspect
import threading
from pathlib import Path
from types import SimpleNamespace
from weakref import WeakSet

import faust
import mode
import pytest
from faust.channels import Channel
from faust.sensors import Monitor
from faust.streams import Stream
from faust.transport import base as transport_base
from faust.transport import consumer as consumer_module
from faust.transport import drivers
from faust.transport.conductor import Conductor
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.transport.producer import ProducerBuffer
from faust.types import TP
from faust.types.tuples import ack_lock
from mode.utils.imports import FactoryMapping
from mode.utils.queues import FlowControlQueue, ThrowableQueue

from arbitration import batch_delivery
from arbitration.batch_agent import AbandonedBatch, batch_topic, batches
from arbitration.batch_delivery import SCHEME, BatchConsumer, Transport, register
from arbitration.faust_worker import make_app
from arbitration.partition_batch import PartitionBatch
from arbitration.quiet_monitor import QuietMonitor
from runtime.kafka import FETCH_MAX_WAIT_MS
from runtime.settings import Settings

TOPIC = "fiml.ticks.raw"


def test_the_versions_reviewed_are_pinned():
    assert importlib.metadata.version("faust-streaming") == faust.__version__ == "0.15.3"
    assert importlib.metadata.version("aiokafka") == "0.14.0"
    assert importlib.metadata.version("mode-streaming") == "0.7.1"
    pins = Path(__file__).parents[1].joinpath("pyproject.toml").read_text()
    for pin in ("faust-streaming==0.15.3", "aiokafka==0.14.0", "mode-streaming==0.7.1"):
        assert f'"{pin}"' in pins, pin


# -------------------------------------------------------------------- names and shapes


def test_the_url_scheme_selects_the_batch_transport():
    register()
    assert isinstance(drivers.TRANSPORTS, FactoryMapping)
    assert faust.transport.by_url(f"{SCHEME}://h:9092") is Transport
    assert issubclass(Transport, aiokafka_driver.Transport)
    assert "self.Consumer(" in inspect.getsource(transport_base.Transport.create_consumer)


@pytest.fixture
def app() -> faust.App:
    register()
    app = faust.App(
        "contract", broker=f"{SCHEME}://127.0.0.1:9", web_enabled=False, store="memory://"
    )
    batch_topic(app, TOPIC)
    return app


def test_the_worker_uses_batch_delivery_without_a_leader_topic(tmp_path):
    settings = Settings.from_env({}, kafka_bootstrap="127.0.0.1:9", cache_dir=str(tmp_path))
    app = make_app(settings)
    assert type(app.consumer) is BatchConsumer
    assert app.conf.topic_disable_leader is True
    assert type(app.monitor) is QuietMonitor


async def test_the_worker_consumer_fetches_wait_at_most_fetch_max_wait_ms(settings, tmp_path):
    """Faust's driver asks for 1.5 s; the started consumer's fetcher has ours."""
    app = make_app(dataclasses.replace(settings, cache_dir=str(tmp_path)))
    consumer = app.consumer._thread._create_worker_consumer(app.transport)
    await consumer.start()
    try:
        assert consumer._fetcher._fetch_max_wait_ms == FETCH_MAX_WAIT_MS == 50
    finally:
        await consumer.stop()


def test_the_quiet_monitor_overrides_hooks_faust_calls():
    """Each hook QuietMonitor silences is one Faust's Monitor has, with the same parameters
    (a renamed hook would silently count again; a removed one would never be called)."""
    hooks = [name for name in vars(QuietMonitor) if name.startswith(("on_", "track_"))]
    assert len(hooks) == 12
    for name in hooks:
        ours = inspect.signature(getattr(QuietMonitor, name))
        theirs = inspect.signature(getattr(Monitor, name))
        assert list(ours.parameters) == list(theirs.parameters), name


def test_the_consumer_and_conductor_state_the_batch_path_reads_and_writes(app):
    consumer = app.consumer
    assert type(consumer) is BatchConsumer
    assert consumer.batch_topics == {TOPIC}
    conductor = app.topics
    assert isinstance(conductor, Conductor)
    assert isinstance(conductor._tp_index, dict)
    assert isinstance(conductor._tp_to_callback_lock, asyncio.Lock)
    assert callable(conductor.acks_enabled_for)
    assert isinstance(conductor._acking_topics, set)
    for name in ("_acked", "_acked_index", "_committed_offset", "_read_offset", "_gap"):
        assert isinstance(getattr(consumer, name), dict), name
    assert isinstance(consumer._unacked_messages, WeakSet)
    assert isinstance(consumer._buffered_partitions, set)
    assert isinstance(consumer.suspend_flow, asyncio.Event)
    assert consumer.flow_active is True
    assert consumer._commit_every == app.conf.broker_commit_every
    assert app.consumer_generation_id == 0
    assert callable(app.flow_control.is_active)
    assert isinstance(app.monitor, Monitor)
    assert isinstance(app.monitor.stream_inbound_time, dict)


def test_the_consumer_methods_the_batch_path_calls_or_overrides():
    expected = {
        "_wait_next_records": ["self", "timeout"],
        "_add_gap": ["self", "tp", "offset_from", "offset_to"],
        "commit": ["self", "topics", "start_new_transaction"],
        "perform_seek": ["self"],
        "_new_offset": ["self", "tp"],
        "wait_empty": ["self"],
        "getmany": ["self", "timeout"],
    }
    for name, parameters in expected.items():
        method = getattr(consumer_module.Consumer, name)
        assert list(inspect.signature(method).parameters) == parameters, name
    assert inspect.isasyncgenfunction(consumer_module.Consumer.getmany)
    assert list(inspect.signature(aiokafka_driver.Consumer._to_message).parameters) == [
        "self",
        "tp",
        "record",
    ]


def test_app_topic_drops_maxsize(app):
    """faust-streaming 0.15.3: App.topic takes ``maxsize`` and does not pass it on, so the
    queue would hold stream_buffer_maxsize (4096) batches; batch_topic builds the Topic."""
    assert app.topic("x", maxsize=3).maxsize is None
    topic = batch_topic(app, TOPIC, maxsize=3)
    assert topic.maxsize == topic.clone().maxsize == topic.clone().queue.maxsize == 3


def test_the_channel_queue_is_a_bounded_flow_controlled_queue():
    assert issubclass(ThrowableQueue, FlowControlQueue)
    for name in ("full", "put", "put_nowait", "qsize", "clear"):
        assert callable(getattr(ThrowableQueue, name)), name
    assert "self.app.FlowControlQueue(" in inspect.getsource(Channel.queue.fget)


def test_producer_buffer_and_wait_first():
    assert isinstance(ProducerBuffer.size, property)
    assert ProducerBuffer.max_messages == 100
    assert inspect.iscoroutinefunction(ProducerBuffer.wait_until_ebb)
    assert "WaitResults(winners, results, False)" in inspect.getsource(mode.Service.wait_first)


def test_the_ack_lock_is_reentrant():
    assert type(ack_lock) is type(threading.RLock())


# -------------------------------------------------------------------- behaviour


class _Crashes:
    """Stands in for ``App.crash``: records the reasons instead of stopping the app."""

    def __init__(self):
        self.reasons = []

    async def __call__(self, reason):
        self.reasons.append(reason)


def _batch(consumer, offsets, generation=0, partition=0):
    records = [SimpleNamespace(offset=offset) for offset in offsets]
    return PartitionBatch(consumer, TP(TOPIC, partition), records, generation, 1)


def test_batch_acks_feed_fausts_own_commit_offset(app):
    consumer = app.consumer
    tp = TP(TOPIC, 0)
    app.topics._acking_topics.add(TOPIC)
    consumer._committed_offset[tp] = 10
    assert consumer.ack_batch(_batch(consumer, range(8, 16)))
    assert consumer._acked[tp] == list(range(10, 16))
    assert consumer._n_acked == 6
    assert consumer._new_offset(tp) == 16  # what Consumer.commit would commit
    consumer._committed_offset[tp] = 16  # as Consumer._commit_offsets records it
    second = _batch(consumer, range(16, 20))
    assert consumer.ack_batch(second)
    assert not consumer.ack_batch(second)  # once only
    assert consumer._new_offset(tp) == 20


def test_a_hole_in_the_acks_holds_the_commit_back(app):
    consumer = app.consumer
    tp = TP(TOPIC, 0)
    app.topics._acking_topics.add(TOPIC)
    consumer._committed_offset[tp] = 5
    consumer.ack_batch(_batch(consumer, range(5, 8)))
    consumer.ack_batch(_batch(consumer, range(10, 15)))  # 8, 9 not processed yet
    assert consumer._new_offset(tp) == 8
    consumer._committed_offset[tp] = 8
    assert consumer._new_offset(tp) is None  # 10.. waits for 8, 9


def test_a_leading_hole_is_not_seen_before_the_first_commit(app):
    """faust-streaming 0.15.3: ``Consumer._new_offset`` checks for a hole before the first
    acked offset only when the committed offset is truthy. Harmless while batches are acked
    in offset order; the reason an abandoned batch crashes the worker."""
    consumer = app.consumer
    tp = TP(TOPIC, 0)
    app.topics._acking_topics.add(TOPIC)
    consumer.ack_batch(_batch(consumer, range(10, 15)))  # 0..9 never acked
    assert consumer._committed_offset[tp] is None
    assert consumer._new_offset(tp) == 15


async def test_gaps_let_commits_pass_offsets_that_never_arrive(app):
    consumer = app.consumer
    tp = TP(TOPIC, 0)
    app.topics._acking_topics.add(TOPIC)
    consumer._committed_offset[tp] = 0
    records = [SimpleNamespace(offset=offset) for offset in (0, 1, 2, 5, 6)]  # 3, 4 compacted
    await consumer._add_gaps(tp, None, records)
    consumer.ack_batch(PartitionBatch(consumer, tp, records, 0, 1))
    assert consumer._new_offset(tp) == 7


def test_the_admission_rule_of_pr_223(app):
    consumer = app.consumer
    app.flow_control.resume()
    current = _batch(consumer, range(3), generation=0)
    assert consumer.admit(current)
    assert current in consumer._unacked_messages
    assert TP(TOPIC, 0) in app.monitor.stream_inbound_time
    consumer.ack_batch(current)
    assert current not in consumer._unacked_messages
    app.consumer_generation_id = 1  # a rebalance happened since the fetch
    stale = _batch(consumer, range(3, 6), generation=0)
    assert not consumer.admit(stale)
    assert stale not in consumer._unacked_messages
    app.flow_control.suspend()
    assert not consumer.admit(_batch(consumer, range(6, 9), generation=1))
    assert consumer.dropped_batches == 2


async def test_clearing_a_full_queue_drops_the_pending_put_without_raising(app):
    """``flow_control.clear()`` (on every rebalance) cancels the futures of pending puts."""
    queue = ThrowableQueue(maxsize=1, flow_control=app.flow_control)
    app.flow_control.resume()
    queue.put_nowait("first")
    pending = asyncio.ensure_future(batch_delivery._put_unless_cleared(queue, "second"))
    await asyncio.sleep(0)
    queue.clear()
    assert await pending is False
    queue.put_nowait("first")
    cancelled = asyncio.ensure_future(batch_delivery._put_unless_cleared(queue, "third"))
    await asyncio.sleep(0)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled


def test_the_fetcher_cannot_restart_on_rebalance():
    """faust-streaming 0.15.3: a CancelledError out of ``_drain_messages`` while rebalancing
    makes the Fetcher call ``self.supervisor.wakeup()`` with no supervisor, and the worker
    stops; the batch path must never raise it (``_put_unless_cleared``)."""
    assert "self.supervisor.wakeup()" in inspect.getsource(consumer_module.Fetcher._fetcher.fun)


async def test_the_stream_passes_a_batch_through_without_ack(app):
    """The agent's stream yields a queued batch as a plain value: no decode, no ack, no
    tracking (``Stream._py_aiter``; the Cython StreamIterator does the same)."""
    app.flow_control.resume()
    channel = app.channel()
    stream = app.stream(channel)
    await channel.put(_batch(app.consumer, range(3)))
    async for value in stream:
        assert isinstance(value, PartitionBatch)
        assert stream.current_event is None
        assert not value.acked
        break
    else:
        pytest.fail("no batch")


async def test_a_batch_is_acknowledged_when_the_loop_body_returns(app, monkeypatch):
    monkeypatch.setattr(app, "crash", _record_crash := _Crashes())
    app.flow_control.resume()
    app.topics._acking_topics.add(TOPIC)
    channel = app.channel()
    first, stale, third = (
        _batch(app.consumer, range(3)),
        _batch(app.consumer, range(3, 6), generation=7),  # another generation: skipped
        _batch(app.consumer, range(3, 6)),
    )
    delivered = batches(app.stream(channel))  # subscribes: put only reaches subscribers
    await channel.put(first)
    assert await anext(delivered) == [first]
    assert first in app.consumer._unacked_messages and not first.acked
    for batch in (stale, third):
        await channel.put(batch)
    assert await anext(delivered) == [third]  # the body of the first returned
    assert first.acked and not stale.acked and not third.acked
    assert app.consumer._acked[TP(TOPIC, 0)] == [0, 1, 2]
    await delivered.aclose()  # leaving the third unfinished crashes the worker
    assert _record_crash.reasons and not third.acked


async def test_the_batches_queued_behind_one_come_with_it(app, monkeypatch):
    """A step takes every batch already queued, skipping stale ones, and acknowledges them
    all when the loop body returns, none before."""
    monkeypatch.setattr(app, "crash", _Crashes())
    app.flow_control.resume()
    app.topics._acking_topics.add(TOPIC)
    channel = app.channel()
    queued = [
        _batch(app.consumer, range(3)),
        _batch(app.consumer, range(3, 6), generation=7),  # another generation: skipped
        _batch(app.consumer, range(3, 6)),
        _batch(app.consumer, range(6, 8), partition=1),
    ]
    delivered = batches(app.stream(channel))
    for batch in queued:
        await channel.put(batch)
    group = await anext(delivered)
    assert group == [queued[0], queued[2], queued[3]]
    assert not any(batch.acked for batch in queued)
    later = _batch(app.consumer, range(8, 9), partition=1)
    await channel.put(later)
    assert await anext(delivered) == [later]
    assert [batch.acked for batch in queued] == [True, False, True, True]
    assert app.consumer._acked[TP(TOPIC, 0)] == [0, 1, 2, 3, 4, 5]
    assert app.consumer._acked[TP(TOPIC, 1)] == [6, 7]
    await delivered.aclose()


async def test_an_abandoned_batch_crashes_the_worker_unacknowledged(app, monkeypatch):
    """A loop body that raises leaves every batch of its step unacknowledged and crashes the
    app, so the restart resumes from the last commit instead of committing past the hole."""
    crashes = _Crashes()
    monkeypatch.setattr(app, "crash", crashes)
    app.flow_control.resume()
    app.topics._acking_topics.add(TOPIC)
    channel = app.channel()
    group = [_batch(app.consumer, range(3)), _batch(app.consumer, range(3, 5), partition=1)]
    delivered = batches(app.stream(channel))
    for batch in group:  # queued together: one step, abandoned as a whole
        await channel.put(batch)
    with pytest.raises(RuntimeError, match="engine failed"):
        async for taken in delivered:
            assert taken == group
            raise RuntimeError("engine failed")
    await delivered.aclose()
    assert [type(reason) for reason in crashes.reasons] == [AbandonedBatch]
    for batch in group:
        assert not batch.acked
        assert batch not in app.consumer._unacked_messages
    assert not app.consumer._acked[TP(TOPIC, 0)] and not app.consumer._acked[TP(TOPIC, 1)]


# -------------------------------------------------------------------- fingerprints

FINGERPRINTS = {
    # What the batch path mirrors or depends on: on a change, review the batch path against
    # the new code, then record the new fingerprint.
    "faust.app.base:App._on_partitions_revoked": "d5c895bbe57dc73a",
    "faust.streams:Stream._py_aiter": "3a48ee257a65435b",
    "faust.transport.conductor:Conductor._update_tp_index": "e8e3ac9025ef44f7",
    "faust.transport.consumer:Consumer._add_gap": "4df2573ded7c1c2c",
    "faust.transport.consumer:Consumer._commit_offsets": "1a69799041188441",
    "faust.transport.consumer:Consumer._drain_messages": "44a2500309e83c63",
    "faust.transport.consumer:Consumer._new_offset": "1d2c7ea89a7ad4f1",
    "faust.transport.consumer:Consumer._wait_next_records": "6218e1969a636b3f",
    "faust.transport.consumer:Consumer.ack": "5fcf41cf45153475",
    "faust.transport.consumer:Consumer.getmany": "4b168d84882a70d6",
    "faust.transport.consumer:Consumer.on_partitions_revoked": "d04b7ae72c6fc206",
    "faust.transport.consumer:Consumer.perform_seek": "0e8c130ff4b0afd8",
    "faust.transport.consumer:Consumer.wait_empty": "e4662fe24f094819",
    "faust.transport.consumer:Fetcher._fetcher": "68f894f0b577d810",
    "faust.transport.drivers.aiokafka:AIOKafkaConsumerThread._fetch_records": "39a2c6c79fc1455a",
    "faust.transport.drivers.aiokafka:AIOKafkaConsumerThread._create_worker_consumer": (
        "c2701bfc3e6f6cad"
    ),
    "faust.transport.drivers.aiokafka:Consumer._new_consumer_thread": "0870ec53dea75083",
    # One fetch in flight per broker, for the partitions without buffered records.
    "aiokafka.consumer.fetcher:Fetcher._get_actions_per_node": "1dab2cf937d165d0",
    "faust.transport.drivers.aiokafka:ConsumerRebalanceListener.on_partitions_assigned": (
        "1c1f8406ad3698a6"
    ),
    "mode.utils.queues:ThrowableQueue.clear": "d18f09e451acf62e",
    "faust/_cython/streams.pyx": "0041622f4a251188",
    "faust/transport/_cython/conductor.pyx": "dde1f974267881cf",
}


def _source(target: str) -> str:
    if target.endswith(".pyx"):
        return (Path(faust.__file__).parent / target.split("/", 1)[1]).read_text()
    module_name, _, qualname = target.partition(":")
    found: object = importlib.import_module(module_name)
    for part in qualname.split("."):
        found = getattr(found, part)
    return inspect.getsource(getattr(found, "fun", found))  # mode's Service.task wraps .fun


@pytest.mark.parametrize("target", sorted(FINGERPRINTS))
def test_the_reviewed_source_is_unchanged(target):
    found = hashlib.sha256(_source(target).encode()).hexdigest()[:16]
    assert found == FINGERPRINTS[target], f"{target} changed: review the batch path"


def test_the_stream_iterator_is_the_reviewed_class():
    assert Stream._py_aiter.__qualname__ == "Stream._py_aiter"
