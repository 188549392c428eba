"""The batch processor and the OTLP/HTTP exporter, against a real OTLP receiver on loopback."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Sequence

import pytest
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider

from autotrace.config import BatchConfig, Config, OTLPConfig
from autotrace.export import (
    OK,
    REJECT,
    RETRY,
    BatchProcessor,
    GrpcTransport,
    HttpTransport,
    Verdict,
    _retry_after,
)
from tests.otlp_receiver import OTLPReceiver


class Recorder:
    """A transport that keeps what it gets and can be told to hang or fail, as a collector would."""

    target = "the recorder"

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.threads: set[str] = set()
        self.suppressed: list[bool] = []
        self.release = threading.Event()
        self.release.set()
        self.encode_release = threading.Event()
        self.encode_release.set()
        self.verdict = Verdict(OK)

    def encode(self, spans: Sequence[ReadableSpan]) -> bytes:
        self.encode_release.wait(30)
        self.threads.add(threading.current_thread().name)
        self.suppressed.append(bool(otel_context.get_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY)))
        return "\n".join(s.name for s in spans).encode()

    def send(self, body: bytes, timeout: float) -> Verdict:
        if not self.release.wait(timeout):
            return Verdict(RETRY, "timed out")
        self.threads.add(threading.current_thread().name)
        self.suppressed.append(bool(otel_context.get_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY)))
        if self.verdict.outcome == OK:
            self.batches.append(body.decode().split("\n"))
        return self.verdict

    def close(self) -> None:
        self.release.set()
        self.encode_release.set()


def make(batch: BatchConfig, transport: Recorder) -> tuple[TracerProvider, BatchProcessor]:
    provider = TracerProvider(shutdown_on_exit=False)
    processor = BatchProcessor(lambda: transport, batch)
    provider.add_span_processor(processor)
    return provider, processor


def spans(provider: TracerProvider, n: int, prefix: str = "s") -> None:
    tracer = provider.get_tracer("t")
    for i in range(n):
        with tracer.start_as_current_span(f"{prefix}{i}"):
            pass


def exported(rec: Recorder) -> list[str]:
    return [n for b in rec.batches for n in b]


def test_batches_by_size_in_threads_that_suppress_instrumentation() -> None:
    rec = Recorder()
    provider, processor = make(BatchConfig(max_export_batch_size=10, schedule_delay_s=60.0), rec)
    spans(provider, 25)
    assert processor.flush(5)
    assert sorted(len(b) for b in rec.batches) == [5, 10, 10]
    assert exported(rec) == [f"s{i}" for i in range(25)]
    assert rec.threads == {"autotrace-export-otlp", "autotrace-send-otlp"}
    assert all(rec.suppressed)


def test_queue_is_bounded_drops_oldest_and_never_blocks() -> None:
    rec = Recorder()
    rec.encode_release.clear()  # encoding is stuck, so spans pile up in the queue
    provider, processor = make(
        BatchConfig(max_queue_size=100, max_export_batch_size=10, schedule_delay_s=0.01), rec
    )
    spans(provider, 1)  # starts the threads; the encoder soon hangs
    deadline = time.monotonic() + 5
    while processor._queue and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    spans(provider, 1000, prefix="x")
    assert time.monotonic() - started < 5  # generous: the point is that nothing waited on the stuck export
    stats = processor.stats()
    assert stats["queued"] == 101  # the queue, and the span the encoder holds
    assert stats["dropped"] == 900
    rec.encode_release.set()
    assert processor.flush(5)
    assert exported(rec)[-100:] == [f"x{i}" for i in range(900, 1000)]  # the newest were kept


def test_a_stuck_send_does_not_stop_encoding_and_the_buffer_is_bounded() -> None:
    rec = Recorder()
    rec.release.clear()  # the collector never answers
    batch = BatchConfig(max_queue_size=20, max_export_batch_size=10, schedule_delay_s=0.01, buffer_bytes=200)
    provider, processor = make(batch, rec)
    for round_ in range(10):  # 100 spans through a 20-span queue: the encoder keeps it drained
        spans(provider, 10, prefix=f"r{round_}-")
        deadline = time.monotonic() + 5
        while processor._queue and time.monotonic() < deadline:
            time.sleep(0.005)
    stats = processor.stats()
    assert stats["buffered_bytes"] <= 200 + 60  # the newest body always stays, whatever its size
    assert stats["dropped"] > 0
    assert stats["dropped"] + stats["queued"] == 100  # nothing lost without being counted
    rec.release.set()
    assert processor.flush(5)
    assert exported(rec)[-10:] == [f"r9-{i}" for i in range(10)]  # the oldest went first


def test_passing_failures_are_retried_in_order_and_rejections_dropped() -> None:
    rec = Recorder()
    rec.verdict = Verdict(RETRY, "HTTP 503")
    provider, processor = make(BatchConfig(max_export_batch_size=5, schedule_delay_s=0.01), rec)
    spans(provider, 12)
    assert not processor.flush(0.5)
    assert processor.stats()["queued"] == 12
    assert processor.last_error == "HTTP 503"
    rec.verdict = Verdict(OK)
    assert processor.flush(10)  # the back-off is short: delivery resumes within seconds
    assert exported(rec) == [f"s{i}" for i in range(12)]
    rec.verdict = Verdict(REJECT, "HTTP 400")
    spans(provider, 3, prefix="bad")
    assert processor.flush(5)
    assert processor.stats()["rejected"] == 3


def test_close_never_waits_longer_than_its_bound() -> None:
    rec = Recorder()
    rec.release.clear()
    provider, processor = make(BatchConfig(), rec)
    spans(provider, 3)
    started = time.monotonic()
    assert processor.close(0.3) is False
    assert time.monotonic() - started < 2


def test_unsampled_spans_are_not_exported() -> None:
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    rec = Recorder()
    provider = TracerProvider(sampler=ALWAYS_OFF, shutdown_on_exit=False)
    processor = BatchProcessor(lambda: rec, BatchConfig())
    provider.add_span_processor(processor)
    spans(provider, 5)
    assert processor.flush(2)
    assert rec.batches == []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_fork_child_starts_empty_with_its_own_threads() -> None:
    rec = Recorder()
    rec.release.clear()
    provider, processor = make(BatchConfig(schedule_delay_s=60.0), rec)
    spans(provider, 3, prefix="parent")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: its queue is empty; its spans export from its own threads
        ok = processor.stats()["queued"] == 0
        child_rec = Recorder()
        processor._make_transport = lambda: child_rec
        spans(provider, 2, prefix="child")
        ok = ok and processor.flush(5) and child_rec.batches == [["child0", "child1"]]
        os.write(write, b"1" if ok else b"0")
        os._exit(0)
    os.close(write)
    assert os.read(read, 1) == b"1"
    os.waitpid(pid, 0)
    rec.release.set()
    assert processor.flush(5)
    assert exported(rec) == ["parent0", "parent1", "parent2"]


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    with OTLPReceiver(grpc=False) as r:
        yield r


def otlp_for(receiver: OTLPReceiver, **kw: object) -> OTLPConfig:
    settings: dict[str, object] = {"timeout_s": 5.0, **kw}
    return OTLPConfig(endpoint=receiver.http_endpoint + "/v1/traces", **settings)


def finished(provider_spans: int = 3) -> list[ReadableSpan]:
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("root", attributes={"k": "v", "n": 3}) as root:
        root.add_event("ev", {"e": 1})
        for i in range(provider_spans - 1):
            with tracer.start_as_current_span(f"c{i}"):
                pass
    return list(memory.get_finished_spans())


@pytest.mark.parametrize("json", [False, True])
@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_http_transport_protobuf_and_json(receiver: OTLPReceiver, json: bool, compression: str) -> None:
    transport = HttpTransport(
        otlp_for(receiver, compression=compression, headers=(("x-api-key", "k1"),)), json=json
    )
    sent = finished()
    assert transport.send(transport.encode(sent), 5) == Verdict(OK)
    got = {s.name: s for s in receiver.wait_for_spans(3)}
    root = next(s for s in sent if s.name == "root")
    assert got["root"].span_id == format(root.context.span_id, "016x")
    assert got["root"].trace_id == format(root.context.trace_id, "032x")
    assert got["root"].attributes == {"k": "v", "n": 3}
    assert got["root"].events == [("ev", {"e": 1})]
    assert got["c0"].parent_span_id == got["root"].span_id
    request = receiver.requests[-1]
    assert request.headers["x-api-key"] == "k1"
    assert request.headers["user-agent"].startswith("autotrace/")
    assert request.headers["content-type"] == ("application/json" if json else "application/x-protobuf")
    assert request.content_encoding == ("gzip" if compression == "gzip" else "")
    transport.close()


def test_http_transport_verdicts(receiver: OTLPReceiver) -> None:
    transport = HttpTransport(otlp_for(receiver, timeout_s=1.0))
    body = transport.encode(finished(1))
    receiver.set_mode("throttle", retry_after=7)
    assert transport.send(body, 5) == Verdict(RETRY, "HTTP 429 b'too many requests'", 7.0)
    receiver.set_mode("error")
    assert transport.send(body, 5).outcome == RETRY
    receiver.set_mode("bad_request")
    assert transport.send(body, 5) == Verdict(REJECT, "HTTP 400 b'rejected'")
    receiver.set_mode("slow", delay=3)
    started = time.monotonic()
    verdict = transport.send(body, 5)
    assert verdict.outcome == RETRY and "timed out" in verdict.detail
    assert time.monotonic() - started < 2.5  # OTEL_EXPORTER_OTLP_TIMEOUT (1 s here) bounds an attempt
    receiver.set_mode("ok")
    assert transport.send(body, 5) == Verdict(OK)


def test_http_transport_survives_a_dead_endpoint() -> None:
    with OTLPReceiver(grpc=False) as gone:
        url = gone.http_endpoint
    transport = HttpTransport(OTLPConfig(endpoint=url + "/v1/traces", timeout_s=1.0))
    verdict = transport.send(transport.encode(finished(1)), 1)
    assert verdict.outcome == RETRY and "ConnectionRefused" in verdict.detail


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    from email.utils import formatdate

    assert _retry_after("120") == 120.0
    assert _retry_after(None) is None
    assert _retry_after("soon") is None
    assert _retry_after("-1") is None
    later = _retry_after(formatdate(time.time() + 30, usegmt=True))
    assert later is not None and 25 < later <= 31


def test_grpc_transport_verdicts() -> None:
    import grpc

    with OTLPReceiver() as receiver:
        transport = GrpcTransport(OTLPConfig(endpoint=receiver.grpc_endpoint, protocol="grpc"), grpc)
        body = transport.encode(finished(2))
        assert transport.send(body, 5) == Verdict(OK)
        assert {s.name for s in receiver.wait_for_spans(2)} == {"root", "c0"}
        receiver.set_mode("error")
        assert transport.send(body, 5).outcome == RETRY
        receiver.set_mode("throttle")  # RESOURCE_EXHAUSTED without RetryInfo: not to be retried
        assert transport.send(body, 5).outcome == REJECT
        receiver.set_mode("throttle", retry_after=2.5)
        verdict = transport.send(body, 5)
        assert verdict.outcome == RETRY and verdict.retry_after == 2.5
        receiver.set_mode("bad_request")
        assert transport.send(body, 5).outcome == REJECT
        transport.close()


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_an_outage_loses_nothing_and_delivery_resumes_promptly(protocol: str) -> None:
    from autotrace.export import make_transport_factory

    with OTLPReceiver() as receiver:
        endpoint = receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint + "/v1/traces"
        otlp = OTLPConfig(endpoint=endpoint, protocol=protocol, timeout_s=2.0)
        batch = BatchConfig(max_queue_size=200, max_export_batch_size=50, schedule_delay_s=0.05)
        provider = TracerProvider(shutdown_on_exit=False)
        processor = BatchProcessor(make_transport_factory("otlp", otlp), batch)
        provider.add_span_processor(processor)
        receiver.set_mode("error")
        for i in range(20):  # 2000 spans, ten times the queue, while the collector is down
            spans(provider, 100, prefix=f"o{i}-")
            time.sleep(0.02)
        assert not processor.flush(0.2)
        assert processor.stats()["dropped"] == 0
        receiver.set_mode("ok")
        came_back = time.monotonic()
        assert processor.flush(15)
        assert time.monotonic() - came_back < 8  # back-off at most 5 s, then everything at once
        names = {s.name for s in receiver.spans}
        assert len(names) == 2000
        processor.close(2)


def test_sdk_build_wires_processor_and_resource(receiver: OTLPReceiver) -> None:
    from autotrace import sdk

    config = Config.from_env(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.http_endpoint, "OTEL_SERVICE_NAME": "svc"}, argv=["x"]
    )
    tracing, problems = sdk.build(config)
    assert problems == []
    with tracing.tracer("unit").start_as_current_span("via-sdk"):
        pass
    assert tracing.flush(5)
    (span,) = receiver.wait_for_spans(1)
    assert span.resource["service.name"] == "svc"
    assert span.scope == "autotrace.unit"
    assert tracing.shutdown(2)


class Broken(Recorder):
    """A transport with a bug in it: encoding or sending raises."""

    def __init__(self, where: str) -> None:
        super().__init__()
        self.where = where

    def encode(self, spans: Sequence[ReadableSpan]) -> bytes:
        if self.where == "encode":
            raise RuntimeError("bug in encoding")
        return super().encode(spans)

    def send(self, body: bytes, timeout: float) -> Verdict:
        if self.where == "send":
            self.where = "fixed"  # a passing bug: the batch must still arrive afterwards
            raise RuntimeError("bug in sending")
        return super().send(body, timeout)


@pytest.mark.parametrize("where", ["encode", "send"])
def test_a_bug_in_export_is_contained_counted_and_never_reaches_the_app(
    where: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from autotrace import _errors

    rec = Broken(where)
    provider, processor = make(BatchConfig(max_export_batch_size=5, schedule_delay_s=0.01), rec)
    _errors.set_strict(False)
    try:
        spans(provider, 10)  # the app's own calls: nothing raised here
        processor.flush(5)
        spans(provider, 10, prefix="again")
        processor.flush(5)
    finally:
        _errors.set_strict(True)
    site = "span encoding" if where == "encode" else "span export"
    assert _errors.error_counts()[site] >= 1
    stats = processor.stats()
    if where == "encode":
        assert stats["failed"] == 20 and stats["exported"] == 0  # counted, and the threads live on
    else:
        assert exported(rec) == [f"s{i}" for i in range(10)] + [f"again{i}" for i in range(10)]
    logged = [line for line in capsys.readouterr().err.splitlines() if "internal error in" in line]
    assert len(logged) <= 1  # said once per site, then counted


def test_a_span_the_encoder_refuses_costs_only_itself(receiver: OTLPReceiver) -> None:
    from autotrace.export import make_transport_factory

    batch = BatchConfig(schedule_delay_s=60.0)
    provider = TracerProvider(shutdown_on_exit=False)
    processor = BatchProcessor(make_transport_factory("otlp", otlp_for(receiver)), batch)
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")
    for i in range(5):
        with tracer.start_as_current_span(f"s{i}" if i != 2 else "lone \udc80 surrogate"):
            pass  # protobuf cannot encode that name
    assert processor.flush(5)
    assert sorted(s.name for s in receiver.wait_for_spans(4)) == ["s0", "s1", "s3", "s4"]
    assert processor.stats()["failed"] == 1
    processor.close(1)


def test_config_with_a_non_ascii_port_warns_instead_of_raising() -> None:
    config = Config.from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://h:\u00b2"}, argv=["x"])
    assert [p.variable for p in config.problems] == ["OTEL_EXPORTER_OTLP_ENDPOINT"]
    assert _retry_after("\u00b2") is None
