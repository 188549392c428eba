"""Span export: a bounded, non-blocking batch processor and the OTLP/HTTP exporter (protobuf and JSON).

The processor never blocks the app: ``on_end`` appends to a bounded deque (when full, the oldest span
is dropped and counted) and a worker thread, started lazily in each process, exports in batches. After a
fork the child starts with an empty queue and its own worker and exporter, made on first use, so
pre-fork servers (gunicorn, uvicorn --workers, multiprocessing) export from every worker and never
share a socket or gRPC channel with their parent.

The worker's context suppresses instrumentation, so the exporter's own HTTP calls are never traced.
"""

from __future__ import annotations

import collections
import gzip
import http.client
import os
import ssl
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Callable
from urllib.parse import urlsplit

from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from autotrace import _log
from autotrace._errors import guard

if TYPE_CHECKING:
    from autotrace.config import BatchConfig, OTLPConfig

ExporterFactory = Callable[[], SpanExporter]
_SUPPRESS_KEY = otel_context._SUPPRESS_INSTRUMENTATION_KEY
_REPORT_INTERVAL_S = 60.0


class BatchProcessor(SpanProcessor):
    """Batches sampled spans to one exporter; bounded memory, never blocks, fork-aware."""

    def __init__(self, make_exporter: ExporterFactory, batch: BatchConfig, name: str = "otlp") -> None:
        self._make_exporter = make_exporter
        self._batch = batch
        self.name = name
        self._lock = threading.Lock()
        self._reset()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        # Runs in the child right after fork: plain assignments only (no locks, no logging, no I/O).
        self._lock = threading.Lock()
        self._queue: collections.deque[ReadableSpan] = collections.deque(maxlen=self._batch.max_queue_size)
        self._wake = threading.Event()
        self._flushes: list[threading.Event] = []
        self._worker: threading.Thread | None = None
        self._exporter: SpanExporter | None = None
        self._stopping = False
        self._dropped = 0
        self._exported = 0
        self._failed = 0

    # -- SpanProcessor -------------------------------------------------------------------------------

    def on_start(self, span: object, parent_context: object = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        if self._stopping or not span.context.trace_flags.sampled:
            return
        queue = self._queue
        if len(queue) >= self._batch.max_queue_size:
            self._dropped += 1  # deque(maxlen) drops the oldest; count it (racy +1 is fine for a report)
        queue.append(span)
        if self._worker is None:
            self._start_worker()
        elif len(queue) >= self._batch.max_export_batch_size:
            self._wake.set()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.flush(timeout_millis / 1000.0)

    def shutdown(self) -> None:
        self.close(self._batch.export_timeout_s)

    # -- our API -------------------------------------------------------------------------------------

    def flush(self, timeout_s: float) -> bool:
        """Export everything queued so far; wait at most ``timeout_s``. True when all was exported."""
        if self._worker is None:
            if not self._queue:
                return True
            if not self._start_worker():
                return self._drain_here()
        done = threading.Event()
        with self._lock:
            self._flushes.append(done)
        self._wake.set()
        return done.wait(timeout_s)

    def close(self, timeout_s: float) -> bool:
        """Flush within ``timeout_s``, then stop the worker and the exporter. Never waits longer."""
        flushed = self.flush(timeout_s)
        self._stopping = True
        self._wake.set()
        exporter = self._exporter
        if exporter is not None:
            with guard("exporter shutdown"):
                exporter.shutdown()
        return flushed

    @property
    def last_error(self) -> str:
        """The exporter's last failure, when it tells (our HTTP exporter does), else ''."""
        return str(getattr(self._exporter, "last_error", "") or "")

    def stats(self) -> dict[str, int]:
        return {
            "queued": len(self._queue),
            "exported": self._exported,
            "dropped": self._dropped,
            "failed": self._failed,
        }

    # -- worker --------------------------------------------------------------------------------------

    def _start_worker(self) -> bool:
        with self._lock:
            if self._worker is not None:
                return True
            worker = threading.Thread(target=self._run, name=f"autotrace-export-{self.name}", daemon=True)
            self._worker = worker
        try:
            worker.start()
        except RuntimeError:  # "can't create new thread at interpreter shutdown" (3.12+)
            return False
        return True

    def _drain_here(self) -> bool:
        """Export from the calling thread: the last resort when no thread can be started (at exit)."""
        token = otel_context.attach(otel_context.set_value(_SUPPRESS_KEY, True))
        try:
            with guard("span export"):
                self._drain()
        finally:
            otel_context.detach(token)
        return not self._queue

    def _run(self) -> None:
        otel_context.attach(otel_context.set_value(_SUPPRESS_KEY, True))
        while True:
            self._wake.wait(self._batch.schedule_delay_s)
            self._wake.clear()
            with guard("span export"):
                self._drain()
            self._release_flushes()
            with guard("span export report"):
                self._report()
            if self._stopping:
                return

    def _drain(self) -> None:
        queue, size = self._queue, self._batch.max_export_batch_size
        while queue:
            batch: list[ReadableSpan] = []
            while queue and len(batch) < size:
                batch.append(queue.popleft())
            self._export(batch)

    def _export(self, batch: Sequence[ReadableSpan]) -> None:
        if self._exporter is None:
            self._exporter = self._make_exporter()
        result = self._exporter.export(batch)
        if result is SpanExportResult.SUCCESS:
            self._exported += len(batch)
        else:
            self._failed += len(batch)

    def _release_flushes(self) -> None:
        with self._lock:
            if self._flushes and self._queue:
                self._wake.set()  # spans arrived while draining: a flush covers them too
                return
            waiting, self._flushes = self._flushes, []
        for event in waiting:
            event.set()

    def _report(self) -> None:
        if self._dropped and _log.warn_throttled(
            "dropped",
            _REPORT_INTERVAL_S,
            "dropped %d spans: the export queue (OTEL_BSP_MAX_QUEUE_SIZE=%d) was full",
            self._dropped,
            self._batch.max_queue_size,
        ):
            self._dropped = 0


# --------------------------------------------------------------------------------------------------
# OTLP over HTTP


_RETRYABLE = frozenset({429, 502, 503, 504})


class OTLPHttpExporter(SpanExporter):
    """OTLP/HTTP with protobuf or JSON bodies, on the standard library's http.client.

    One kept-alive connection, used only by the processor's worker thread. Retries 429/502/503/504 and
    connection errors with exponential back-off (honouring ``Retry-After``) within the export timeout;
    ``shutdown`` interrupts a back-off at once.
    """

    def __init__(self, otlp: OTLPConfig, *, json: bool = False, timeout_s: float | None = None) -> None:
        self._url = urlsplit(otlp.endpoint)
        self._path = (self._url.path or "/") + (f"?{self._url.query}" if self._url.query else "")
        self._timeout = min(otlp.timeout_s, timeout_s) if timeout_s else otlp.timeout_s
        self._json = json
        self._gzip = otlp.compression == "gzip"
        self._headers = self._base_headers(otlp)
        self._ssl = _ssl_context(otlp) if self._url.scheme == "https" else None
        self._conn: http.client.HTTPConnection | None = None
        self._stop = threading.Event()
        self.last_error = ""  # what went wrong with the last failed attempt, for the exit warning

    def _base_headers(self, otlp: OTLPConfig) -> dict[str, str]:
        headers = {k: v for k, v in otlp.headers}
        headers["Content-Type"] = "application/json" if self._json else "application/x-protobuf"
        headers.setdefault("User-Agent", _user_agent())
        if self._gzip:
            headers["Content-Encoding"] = "gzip"
        return headers

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        body = encode_json(spans) if self._json else encode_protobuf(spans)
        if self._gzip:
            body = gzip.compress(body, compresslevel=6)
        deadline = time.monotonic() + self._timeout
        delay = 1.0
        while True:
            status, retry_after, detail = self._post(body, deadline)
            if 200 <= status < 300:
                self.last_error = ""
                return SpanExportResult.SUCCESS
            self.last_error = f"{self._url.geturl()}: {detail}"
            retryable = status in _RETRYABLE or status == 0
            wait = retry_after if retry_after is not None else delay
            if not retryable or time.monotonic() + wait >= deadline or self._stop.is_set():
                self._say_failed(len(spans), detail)
                return SpanExportResult.FAILURE
            if self._stop.wait(wait):
                self._say_failed(len(spans), detail)
                return SpanExportResult.FAILURE
            delay = min(delay * 2, 30.0)

    def _post(self, body: bytes, deadline: float) -> tuple[int, float | None, str]:
        """One POST; (status or 0 for a connection error, Retry-After seconds, what went wrong)."""
        try:
            conn = self._connection(max(0.05, deadline - time.monotonic()))
            conn.request("POST", self._path, body=body, headers=self._headers)
            response = conn.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self._close_connection()
            return 0, None, f"{type(exc).__name__}: {exc}"
        if response.getheader("Connection", "").lower() == "close":
            self._close_connection()
        status = response.status
        detail = f"HTTP {status}" + (f" {payload[:200]!r}" if status >= 300 and payload else "")
        return status, _retry_after(response.getheader("Retry-After")), detail

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        conn = self._conn
        if conn is None:
            host, port = self._url.hostname or "localhost", self._url.port
            if self._ssl is not None:
                conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=self._ssl)
            else:
                conn = http.client.HTTPConnection(host, port, timeout=timeout)
            self._conn = conn
        conn.timeout = timeout
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        return conn

    def _close_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _say_failed(self, count: int, detail: str) -> None:
        _log.warn_throttled(
            "export-failed",
            _REPORT_INTERVAL_S,
            "could not export %d spans to %s (%s); the app is unaffected",
            count,
            self._url.geturl(),
            detail,
        )

    def shutdown(self) -> None:
        self._stop.set()
        self._close_connection()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, min(float(value), 60.0))
    except ValueError:
        return None  # an HTTP-date: fall back to our own back-off


def _ssl_context(otlp: OTLPConfig) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=otlp.certificate)
    if otlp.client_certificate:
        context.load_cert_chain(otlp.client_certificate, otlp.client_key)
    return context


def _user_agent() -> str:
    from autotrace._version import __version__

    return f"autotrace/{__version__}"


def encode_protobuf(spans: Sequence[ReadableSpan]) -> bytes:
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    data: bytes = encode_spans(spans).SerializeToString()
    return data


_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


def encode_json(spans: Sequence[ReadableSpan]) -> bytes:
    """OTLP/JSON: the protobuf JSON mapping, but ids as hex strings and enums as integers."""
    import base64
    import json

    from google.protobuf.json_format import MessageToDict
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    message = MessageToDict(encode_spans(spans), use_integers_for_enums=True)

    def hexify(obj: dict[str, object]) -> None:
        for key in _ID_FIELDS:
            value = obj.get(key)
            if isinstance(value, str):
                obj[key] = base64.b64decode(value).hex()

    for resource_spans in message.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                hexify(span)
                for link in span.get("links", []):
                    hexify(link)
    return json.dumps(message, separators=(",", ":")).encode()


# --------------------------------------------------------------------------------------------------
# Exporter factories


def make_exporter_factory(name: str, otlp: OTLPConfig, batch: BatchConfig) -> ExporterFactory:
    """A factory for the exporter ``name`` (``otlp`` or ``console``), called in the worker thread."""
    if name == "console":
        return _console_exporter
    if otlp.protocol == "grpc":
        # The gRPC exporter's modules cannot be imported once interpreter shutdown has begun (they
        # schedule work on thread pools at import), and a script that ends at once has its first export
        # at exit: import them now, when tracing is first used. HTTP stays lazy and cheap.
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return lambda: _grpc_exporter(OTLPSpanExporter, otlp, batch)
    return lambda: OTLPHttpExporter(otlp, json=otlp.protocol == "http/json", timeout_s=batch.export_timeout_s)


def _console_exporter() -> SpanExporter:
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    return ConsoleSpanExporter()


def _grpc_exporter(exporter_class: type[SpanExporter], otlp: OTLPConfig, batch: BatchConfig) -> SpanExporter:
    url = urlsplit(otlp.endpoint)
    insecure = otlp.insecure if otlp.insecure is not None else url.scheme != "https"
    credentials = None
    if not insecure:
        import grpc

        credentials = grpc.ssl_channel_credentials(
            _read(otlp.certificate), _read(otlp.client_key), _read(otlp.client_certificate)
        )
    from grpc import Compression

    return exporter_class(  # type: ignore[call-arg]
        endpoint=f"{url.hostname}:{url.port or (443 if url.scheme == 'https' else 4317)}",
        insecure=insecure,
        credentials=credentials,
        headers=dict(otlp.headers),
        timeout=min(otlp.timeout_s, batch.export_timeout_s),
        compression=Compression.Gzip if otlp.compression == "gzip" else Compression.NoCompression,
    )


def _read(path: str | None) -> bytes | None:
    if not path:
        return None
    with open(path, "rb") as f:
        return f.read()
