"""The batch processor and the OTLP/HTTP exporter, against a real OTLP receiver on loopback."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Sequence

import pytest
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from autotrace.config import BatchConfig, Config, OTLPConfig
from autotrace.export import BatchProcessor, OTLPHttpExporter
from tests.otlp_receiver import OTLPReceiver


class Recorder(SpanExporter):
    """An exporter that keeps what it gets and can be told to hang, as a stuck collector would."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.threads: set[str] = set()
        self.suppressed: list[bool] = []
        self.release = threading.Event()
        self.release.set()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.release.wait(30)
        self.threads.add(threading.current_thread().name)
        self.suppressed.append(bool(otel_context.get_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY)))
        self.batches.append([s.name for s in spans])
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.release.set()


def make(batch: BatchConfig, exporter: SpanExporter) -> tuple[TracerProvider, BatchProcessor]:
    provider = TracerProvider(shutdown_on_exit=False)
    processor = BatchProcessor(lambda: exporter, batch)
    provider.add_span_processor(processor)
    return provider, processor


def spans(provider: TracerProvider, n: int, prefix: str = "s") -> None:
    tracer = provider.get_tracer("t")
    for i in range(n):
        with tracer.start_as_current_span(f"{prefix}{i}"):
            pass


def test_batches_by_size_in_a_worker_thread_that_suppresses_instrumentation() -> None:
    rec = Recorder()
    provider, processor = make(BatchConfig(max_export_batch_size=10, schedule_delay_s=60.0), rec)
    spans(provider, 25)
    assert processor.flush(5)
    assert sorted(len(b) for b in rec.batches) == [5, 10, 10]
    assert [n for b in rec.batches for n in b] == [f"s{i}" for i in range(25)]
    assert rec.threads == {"autotrace-export-otlp"}
    assert all(rec.suppressed)


def test_queue_is_bounded_drops_oldest_and_never_blocks() -> None:
    rec = Recorder()
    rec.release.clear()  # the "collector" hangs
    provider, processor = make(
        BatchConfig(max_queue_size=100, max_export_batch_size=10, schedule_delay_s=0.01), rec
    )
    spans(provider, 1)  # starts the worker, which soon hangs inside export
    deadline = time.monotonic() + 5
    while processor.stats()["queued"] and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    spans(provider, 1000, prefix="x")
    elapsed = time.monotonic() - started
    assert elapsed < 5  # generous: the point is that nothing waited on the stuck export
    stats = processor.stats()
    assert stats["queued"] == 100
    assert stats["dropped"] == 900
    rec.release.set()
    assert processor.flush(5)
    exported = [n for b in rec.batches for n in b]
    assert exported[-100:] == [f"x{i}" for i in range(900, 1000)]  # the newest were kept


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
def test_fork_child_starts_empty_with_its_own_worker() -> None:
    rec = Recorder()
    rec.release.clear()
    provider, processor = make(BatchConfig(schedule_delay_s=60.0), rec)
    spans(provider, 3, prefix="parent")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: its queue is empty; its spans export from its own worker thread
        ok = processor.stats()["queued"] == 0
        child_rec = Recorder()
        processor._make_exporter = lambda: child_rec
        spans(provider, 2, prefix="child")
        ok = ok and processor.flush(5) and child_rec.batches == [["child0", "child1"]]
        os.write(write, b"1" if ok else b"0")
        os._exit(0)
    os.close(write)
    assert os.read(read, 1) == b"1"
    os.waitpid(pid, 0)
    rec.release.set()
    assert processor.flush(5)
    assert [n for b in rec.batches for n in b] == ["parent0", "parent1", "parent2"]


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
def test_http_exporter_protobuf_and_json(receiver: OTLPReceiver, json: bool, compression: str) -> None:
    exporter = OTLPHttpExporter(
        otlp_for(receiver, compression=compression, headers=(("x-api-key", "k1"),)), json=json
    )
    sent = finished()
    assert exporter.export(sent) is SpanExportResult.SUCCESS
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
    exporter.shutdown()


def test_http_exporter_retries_a_throttled_collector_then_succeeds(receiver: OTLPReceiver) -> None:
    exporter = OTLPHttpExporter(otlp_for(receiver))
    receiver.set_mode("throttle", retry_after=1)
    timer = threading.Timer(0.5, receiver.set_mode, args=("ok",))
    timer.start()
    assert exporter.export(finished(1)) is SpanExportResult.SUCCESS
    assert len(receiver.wait_for_spans(1)) == 1
    assert [r.status for r in receiver.requests][:1] == [429]


def test_http_exporter_gives_up_at_its_timeout_and_on_permanent_errors(receiver: OTLPReceiver) -> None:
    receiver.set_mode("error")
    exporter = OTLPHttpExporter(otlp_for(receiver, timeout_s=1.5))
    started = time.monotonic()
    assert exporter.export(finished(1)) is SpanExportResult.FAILURE
    assert time.monotonic() - started < 5
    receiver.set_mode("bad_request")
    assert exporter.export(finished(1)) is SpanExportResult.FAILURE
    assert receiver.requests[-1].status == 400


def test_http_exporter_shutdown_interrupts_back_off(receiver: OTLPReceiver) -> None:
    receiver.set_mode("throttle", retry_after=30)
    exporter = OTLPHttpExporter(otlp_for(receiver, timeout_s=60))
    threading.Timer(0.3, exporter.shutdown).start()
    started = time.monotonic()
    assert exporter.export(finished(1)) is SpanExportResult.FAILURE
    assert time.monotonic() - started < 5


def test_http_exporter_survives_a_dead_endpoint() -> None:
    with OTLPReceiver(grpc=False) as gone:
        url = gone.http_endpoint
    exporter = OTLPHttpExporter(OTLPConfig(endpoint=url + "/v1/traces", timeout_s=1.0))
    assert exporter.export(finished(1)) is SpanExportResult.FAILURE


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
