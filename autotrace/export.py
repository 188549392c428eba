"""Span export: a bounded, non-blocking batch processor, an in-memory buffer that rides out collector
outages, and the OTLP transports (HTTP with protobuf or JSON, gRPC).

The app's thread only appends the ended span to a bounded deque (``OTEL_BSP_MAX_QUEUE_SIZE``; when full
the oldest span is dropped and counted). Two threads per process, started lazily, do the rest:

* the *encoder* turns queued spans into request bodies, in batches, every ``OTEL_BSP_SCHEDULE_DELAY``
  or as soon as a batch is full, and appends them to the *buffer*;
* the *sender* posts the oldest body. What the collector could not take for a passing reason (down,
  refusing, timing out, 5xx, 429) goes back to the head of the buffer, and the sender tries again after a
  short back-off (``Retry-After`` when the collector gives one), so delivery resumes within seconds of the
  collector's return, in order. What the collector rejects for good (other 4xx) is dropped.

The buffer holds encoded bodies, a few hundred bytes a span, bounded by ``AUTOTRACE_EXPORT_BUFFER_SIZE``
(32 MiB: about a minute of an outage at a thousand spans a second); when full, the oldest bodies go first.
Encoding goes on while a send is stuck on a slow collector, so the span queue keeps draining.
Drops and failures are said at most once a minute each.

After a fork the child starts with an empty queue and buffer, and its own threads and connection, made on
first use: pre-fork servers export from every worker and never share a socket or channel with their
parent. The threads' context suppresses instrumentation, so the exporter's own requests are never traced.
"""

from __future__ import annotations

import collections
import gzip
import http.client
import os
import random
import ssl
import sys
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Callable, NamedTuple, Protocol
from urllib.parse import urlsplit

from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

from autotrace import _log
from autotrace._errors import guard

if TYPE_CHECKING:
    from autotrace.config import BatchConfig, OTLPConfig

_SUPPRESS_KEY = otel_context._SUPPRESS_INSTRUMENTATION_KEY
_REPORT_INTERVAL_S = 60.0
_FIRST_BACKOFF_S = 0.5
_MAX_BACKOFF_S = 5.0  # a returning collector is found again within this
_MAX_RETRY_AFTER_S = 60.0

OK, RETRY, REJECT = "ok", "retry", "reject"


class Verdict(NamedTuple):
    """What one attempt came to: ``ok``, ``retry`` (a passing failure) or ``reject`` (never will)."""

    outcome: str
    detail: str = ""
    retry_after: float | None = None


class Transport(Protocol):
    """Encodes spans into one request body and sends it; used by one processor's threads only."""

    target: str

    def encode(self, spans: Sequence[ReadableSpan]) -> bytes: ...

    def send(self, body: bytes, timeout: float) -> Verdict: ...

    def close(self) -> None: ...


TransportFactory = Callable[[], Transport]


class _Body(NamedTuple):
    data: bytes
    spans: int


class BatchProcessor(SpanProcessor):
    """Batches sampled spans to one transport; bounded memory, never blocks, rides out outages."""

    def __init__(self, make_transport: TransportFactory, batch: BatchConfig, name: str = "otlp") -> None:
        self._make_transport = make_transport
        self._batch = batch
        self.name = name
        # One attempt may take this long: OTEL_BSP_EXPORT_TIMEOUT bounds it whatever the transport does.
        self.attempt_timeout_s = batch.export_timeout_s
        self._reset()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        # Runs in the child right after fork: plain assignments only (no locks taken, no logging, no I/O).
        self._cond = threading.Condition(threading.Lock())
        self._queue: collections.deque[ReadableSpan] = collections.deque(maxlen=self._batch.max_queue_size)
        self._buffer: collections.deque[_Body] = collections.deque()
        self._buffered_bytes = 0
        self._in_hand = 0  # spans the encoder has taken from the queue and not yet buffered
        self._in_flight: _Body | None = None
        self._wake_encoder = threading.Event()
        self._threads: list[threading.Thread] | None = None
        self._transport: Transport | None = None
        self._stopping = False
        self._hurry = False  # a flush wants an attempt now, back-off or not
        self._deadline: float | None = None  # set by close: no attempt may outlast it
        self._retry_at = 0.0
        self._backoff = 0.0
        self._outage_since: float | None = None
        self._last_error = ""
        self._dropped_queue = 0  # counts since start; _said_* is how much of them was reported
        self._dropped_buffer = 0
        self._said_queue = 0
        self._said_buffer = 0
        self._exported = 0
        self._rejected = 0
        self._failed = 0

    # -- SpanProcessor -------------------------------------------------------------------------------

    def on_start(self, span: object, parent_context: object = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        if self._stopping or not span.context.trace_flags.sampled:
            return
        queue = self._queue
        if len(queue) >= self._batch.max_queue_size:
            self._dropped_queue += 1  # deque(maxlen) drops the oldest; a racy +1 is fine for a report
        queue.append(span)
        if self._threads is None:
            self._start_threads()
        elif len(queue) >= self._batch.max_export_batch_size:
            self._wake_encoder.set()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.flush(timeout_millis / 1000.0)

    def shutdown(self) -> None:
        self.close(self._batch.export_timeout_s)

    # -- our API -------------------------------------------------------------------------------------

    def flush(self, timeout_s: float) -> bool:
        """Deliver everything queued so far; wait at most ``timeout_s``. True when all was delivered."""
        if self._drained():
            return True
        deadline = time.monotonic() + timeout_s
        if self._threads is None and not self._start_threads():
            return self._deliver_here(deadline)
        with self._cond:
            self._hurry = True
            self._cond.notify_all()
        self._wake_encoder.set()
        with self._cond:
            while not self._drained():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self, timeout_s: float) -> bool:
        """Flush within ``timeout_s``, then stop the threads and the transport. Never waits longer."""
        with self._cond:
            self._deadline = time.monotonic() + timeout_s
        flushed = self.flush(timeout_s)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._wake_encoder.set()
        transport = self._transport
        if transport is not None:
            with guard("exporter shutdown"):
                transport.close()
        return flushed

    @property
    def last_error(self) -> str:
        """What went wrong with the last failed attempt, or ''."""
        return self._last_error

    def stats(self) -> dict[str, int]:
        with self._cond:
            held = sum(b.spans for b in self._buffer) + (self._in_flight.spans if self._in_flight else 0)
            held += self._in_hand
            buffered_bytes = self._buffered_bytes
        return {
            "queued": len(self._queue) + held,
            "buffered_bytes": buffered_bytes,
            "exported": self._exported,
            "dropped": self._dropped_queue + self._dropped_buffer,
            "rejected": self._rejected,
            "failed": self._failed,
        }

    # -- threads -------------------------------------------------------------------------------------

    def _drained(self) -> bool:
        return not (self._queue or self._in_hand or self._buffer or self._in_flight)

    def _start_threads(self) -> bool:
        with self._cond:
            if self._threads is not None:
                return True
            self._threads = [
                threading.Thread(target=self._encode_loop, name=f"autotrace-export-{self.name}", daemon=True),
                threading.Thread(target=self._send_loop, name=f"autotrace-send-{self.name}", daemon=True),
            ]
        try:
            for thread in self._threads:
                thread.start()
        except RuntimeError:  # "can't create new thread at interpreter shutdown" (3.12+)
            return False
        return True

    def _transport_now(self) -> Transport:
        with self._cond:
            if self._transport is None:
                self._transport = self._make_transport()
            return self._transport

    def _encode_loop(self) -> None:
        otel_context.attach(otel_context.set_value(_SUPPRESS_KEY, True))
        while not self._stopping:
            self._wake_encoder.wait(self._batch.schedule_delay_s)
            self._wake_encoder.clear()
            self._encode_queued()
            with guard("span export report"):
                self._report_drops()

    def _encode_queued(self) -> None:
        queue, size = self._queue, self._batch.max_export_batch_size
        while queue:
            batch: list[ReadableSpan] = []
            body, bad = None, 0
            try:
                with self._cond:  # taken under the lock, so a flush never sees the spans nowhere
                    while queue and len(batch) < size:
                        batch.append(queue.popleft())
                    self._in_hand = len(batch)
                with guard("span encoding"):
                    body, bad = self._encode(batch)
            finally:
                with self._cond:
                    self._in_hand = 0
                    if body is None:
                        self._failed += len(batch)
                    else:
                        self._failed += bad
                        self._keep(_Body(body, len(batch) - bad))
                    self._cond.notify_all()

    def _encode(self, batch: list[ReadableSpan]) -> tuple[bytes | None, int]:
        """The batch's body, and how many spans had to be left out of it.

        A span the encoder refuses (an attribute holding a lone surrogate, say) must not cost the whole
        batch: the batch is then encoded span by span, and only those that fail are left out (counted).
        """
        transport = self._transport_now()
        try:
            return transport.encode(batch), 0
        except (ValueError, TypeError, UnicodeError):
            pass
        good = []
        for span in batch:
            try:
                transport.encode([span])
            except (ValueError, TypeError, UnicodeError):
                continue
            good.append(span)
        return (transport.encode(good) if good else None), len(batch) - len(good)

    def _keep(self, body: _Body) -> None:
        """Append to the buffer, dropping the oldest bodies beyond its size (the newest always stays)."""
        self._buffer.append(body)
        self._buffered_bytes += len(body.data)
        while self._buffered_bytes > self._batch.buffer_bytes and len(self._buffer) > 1:
            old = self._buffer.popleft()
            self._buffered_bytes -= len(old.data)
            self._dropped_buffer += old.spans

    def _send_loop(self) -> None:
        otel_context.attach(otel_context.set_value(_SUPPRESS_KEY, True))
        while True:
            body = self._next_body()
            if body is None:
                return
            self._deliver(body)

    def _next_body(self) -> _Body | None:
        """The oldest body once it may be sent (back-off over, or a flush in a hurry); None to stop."""
        with self._cond:
            while True:
                if self._stopping:
                    return None
                wait: float | None = None
                if self._buffer:
                    wait = self._retry_at - time.monotonic()
                    if wait <= 0 or self._hurry:
                        self._hurry = False
                        self._in_flight = self._buffer.popleft()
                        return self._in_flight
                self._cond.wait(wait)

    def _deliver(self, body: _Body) -> Verdict:
        timeout = self.attempt_timeout_s
        if self._deadline is not None:
            timeout = min(timeout, max(0.05, self._deadline - time.monotonic()))
        verdict = Verdict(RETRY, "internal error (see above)")
        with guard("span export"):
            verdict = self._transport_now().send(body.data, timeout)
        with self._cond:
            self._in_flight = None
            self._settle(body, verdict)
            self._cond.notify_all()
        with guard("span export report"):
            self._report(body, verdict)
        return verdict

    def _settle(self, body: _Body, verdict: Verdict) -> None:
        if verdict.outcome == RETRY:
            self._buffer.appendleft(body)
            self._last_error = verdict.detail
            if verdict.retry_after is not None:
                delay = min(verdict.retry_after, _MAX_RETRY_AFTER_S)
            else:
                self._backoff = min(max(self._backoff * 2, _FIRST_BACKOFF_S), _MAX_BACKOFF_S)
                delay = self._backoff * random.uniform(0.8, 1.0)
            self._retry_at = time.monotonic() + delay
            return
        self._buffered_bytes -= len(body.data)
        self._backoff = 0.0
        self._retry_at = 0.0
        if verdict.outcome == OK:
            self._exported += body.spans
        else:
            self._rejected += body.spans
            self._last_error = verdict.detail

    def _deliver_here(self, deadline: float) -> bool:
        """Encode and send from the calling thread: the last resort when no thread can start (at exit)."""
        token = otel_context.attach(otel_context.set_value(_SUPPRESS_KEY, True))
        try:
            self._encode_queued()
            with self._cond:
                self._deadline = deadline
            while self._buffer and time.monotonic() < deadline:
                body = self._buffer.popleft()
                self._in_flight = body
                if self._deliver(body).outcome == RETRY:
                    break
        finally:
            otel_context.detach(token)
        return self._drained()

    # -- what we say ---------------------------------------------------------------------------------

    def _report(self, body: _Body, verdict: Verdict) -> None:
        target = self._transport.target if self._transport is not None else self.name
        now = time.monotonic()
        if verdict.outcome == RETRY:
            if self._outage_since is None:
                self._outage_since = now
            _log.warn_throttled(
                f"export-retry-{self.name}",
                _REPORT_INTERVAL_S,
                "could not export to %s (%s); keeping %d spans (%.1f MB) in memory and retrying",
                target,
                verdict.detail,
                self.stats()["queued"],
                self._buffered_bytes / 1e6,
            )
        elif verdict.outcome == REJECT:
            _log.warn_throttled(
                f"export-rejected-{self.name}",
                _REPORT_INTERVAL_S,
                "%s rejected %d spans (%s); they are dropped",
                target,
                body.spans,
                verdict.detail,
            )
        if verdict.outcome != RETRY and self._outage_since is not None:
            _log.warn_throttled(
                f"export-resumed-{self.name}",
                _REPORT_INTERVAL_S,
                "export to %s resumed after %.0f s",
                target,
                now - self._outage_since,
                level=20,
            )
            self._outage_since = None
        self._report_drops()

    def _report_drops(self) -> None:
        queue_total, buffer_total = self._dropped_queue, self._dropped_buffer
        queue, buffer = queue_total - self._said_queue, buffer_total - self._said_buffer
        if not (queue or buffer):
            return
        reasons = []
        if queue:
            size = self._batch.max_queue_size
            reasons.append(f"{queue} as the queue (OTEL_BSP_MAX_QUEUE_SIZE={size}) was full")
        if buffer:
            reasons.append(
                f"{buffer} as the export buffer (AUTOTRACE_EXPORT_BUFFER_SIZE={self._batch.buffer_bytes}"
                " bytes) was full while the collector could not take them"
            )
        said = _log.warn_throttled(
            f"dropped-{self.name}",
            _REPORT_INTERVAL_S,
            "dropped %d spans: %s",
            queue + buffer,
            "; ".join(reasons),
        )
        if said:
            self._said_queue, self._said_buffer = queue_total, buffer_total


# --------------------------------------------------------------------------------------------------
# OTLP over HTTP


_RETRYABLE_HTTP = frozenset({429, 502, 503, 504})


class HttpTransport:
    """OTLP/HTTP with protobuf or JSON bodies (gzip on request), on the standard library's http.client.

    One kept-alive connection, used by the sender thread only; one attempt per ``send``.
    """

    def __init__(self, otlp: OTLPConfig, *, json: bool = False) -> None:
        self._url = urlsplit(otlp.endpoint)
        self.target = self._url.geturl()
        self._path = (self._url.path or "/") + (f"?{self._url.query}" if self._url.query else "")
        self._timeout = otlp.timeout_s
        self._json = json
        self._gzip = otlp.compression == "gzip"
        self._headers = self._base_headers(otlp)
        self._ssl = _ssl_context(otlp) if self._url.scheme == "https" else None
        self._conn: http.client.HTTPConnection | None = None

    def _base_headers(self, otlp: OTLPConfig) -> dict[str, str]:
        headers = {k: v for k, v in otlp.headers}
        headers["Content-Type"] = "application/json" if self._json else "application/x-protobuf"
        headers.setdefault("User-Agent", _user_agent())
        if self._gzip:
            headers["Content-Encoding"] = "gzip"
        return headers

    def encode(self, spans: Sequence[ReadableSpan]) -> bytes:
        body = encode_json(spans) if self._json else encode_protobuf(spans)
        return gzip.compress(body, compresslevel=6) if self._gzip else body

    def send(self, body: bytes, timeout: float) -> Verdict:
        try:
            conn = self._connection(min(timeout, self._timeout))
            conn.request("POST", self._path, body=body, headers=self._headers)
            response = conn.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            return Verdict(RETRY, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        if response.getheader("Connection", "").lower() == "close":
            self.close()
        status = response.status
        if 200 <= status < 300:
            return Verdict(OK)
        detail = f"HTTP {status}" + (f" {payload[:200]!r}" if payload else "")
        if status in _RETRYABLE_HTTP:
            return Verdict(RETRY, detail, _retry_after(response.getheader("Retry-After")))
        return Verdict(REJECT, detail)

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

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


def _retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds: delay-seconds or an HTTP-date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # isdigit() alone also takes "²", which float() refuses
        return float(value)
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - time.time())


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
# OTLP over gRPC


_EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
# OTLP's list of transient gRPC failures; RESOURCE_EXHAUSTED only when the server says when to retry.
_RETRYABLE_GRPC = ("CANCELLED", "DEADLINE_EXCEEDED", "ABORTED", "OUT_OF_RANGE", "UNAVAILABLE", "DATA_LOSS")


class GrpcTransport:
    """OTLP/gRPC: the protobuf body is sent as it is, on one channel made in the sender thread.

    The channel's own reconnect back-off is kept short (gRPC's default grows to two minutes), so a
    collector that comes back is found again within seconds.
    """

    def __init__(self, otlp: OTLPConfig, grpc: Any) -> None:
        self._grpc = grpc
        url = urlsplit(otlp.endpoint)
        self.target = f"{url.hostname}:{url.port or (443 if url.scheme == 'https' else 4317)}"
        insecure = otlp.insecure if otlp.insecure is not None else url.scheme != "https"
        self._credentials = None
        if not insecure:
            self._credentials = grpc.ssl_channel_credentials(
                _read(otlp.certificate), _read(otlp.client_key), _read(otlp.client_certificate)
            )
        self._metadata = tuple((k.lower(), v) for k, v in otlp.headers)
        self._compression = grpc.Compression.Gzip if otlp.compression == "gzip" else None
        self._timeout = otlp.timeout_s
        self._channel: Any = None
        self._call: Any = None

    def encode(self, spans: Sequence[ReadableSpan]) -> bytes:
        return encode_protobuf(spans)

    def send(self, body: bytes, timeout: float) -> Verdict:
        grpc = self._grpc
        try:
            self._stub()(
                body,
                timeout=min(timeout, self._timeout),
                metadata=self._metadata,
                compression=self._compression,
            )
        except grpc.RpcError as error:
            return _grpc_verdict(error)
        return Verdict(OK)

    def _stub(self) -> Any:
        if self._call is None:
            options = [
                ("grpc.initial_reconnect_backoff_ms", 500),
                ("grpc.min_reconnect_backoff_ms", 500),
                ("grpc.max_reconnect_backoff_ms", int(_MAX_BACKOFF_S * 1000)),
                ("grpc.primary_user_agent", _user_agent()),
            ]
            if self._credentials is None:
                self._channel = self._grpc.insecure_channel(self.target, options=options)
            else:
                self._channel = self._grpc.secure_channel(self.target, self._credentials, options=options)
            # No (de)serializers: the body goes as the bytes we encoded, the answer comes back as bytes.
            self._call = self._channel.unary_unary(_EXPORT_METHOD)
        return self._call

    def close(self) -> None:
        channel, self._channel, self._call = self._channel, None, None
        if channel is not None:
            channel.close()


def _grpc_verdict(error: Any) -> Verdict:
    code = error.code() if callable(getattr(error, "code", None)) else None
    name = getattr(code, "name", "UNKNOWN")
    detail = f"gRPC {name}" + (f": {error.details()}" if callable(getattr(error, "details", None)) else "")
    if name in _RETRYABLE_GRPC:
        return Verdict(RETRY, detail, _grpc_retry_delay(error))
    if name == "RESOURCE_EXHAUSTED":
        delay = _grpc_retry_delay(error)
        if delay is not None:
            return Verdict(RETRY, detail, delay)
    return Verdict(REJECT, detail)


def _grpc_retry_delay(error: Any) -> float | None:
    """The server's RetryInfo delay, from the status details in the trailing metadata."""
    trailing = error.trailing_metadata() if callable(getattr(error, "trailing_metadata", None)) else None
    blob = next((v for k, v in trailing or () if k == "grpc-status-details-bin"), None)
    if not isinstance(blob, bytes):
        return None
    from google.rpc import error_details_pb2, status_pb2

    status = status_pb2.Status.FromString(blob)
    for detail in status.details:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return float(info.retry_delay.seconds + info.retry_delay.nanos / 1e9)
    return None


# --------------------------------------------------------------------------------------------------
# Console


class ConsoleTransport:
    """One JSON document per span on standard output (for a look while developing)."""

    target = "the console"

    def encode(self, spans: Sequence[ReadableSpan]) -> bytes:
        return "".join(span.to_json() + "\n" for span in spans).encode()

    def send(self, body: bytes, timeout: float) -> Verdict:
        sys.stdout.write(body.decode())
        sys.stdout.flush()
        return Verdict(OK)

    def close(self) -> None:
        return None


# --------------------------------------------------------------------------------------------------
# Transport factories


def make_transport_factory(name: str, otlp: OTLPConfig) -> TransportFactory:
    """A factory for the exporter ``name`` (``otlp`` or ``console``), called in an export thread."""
    if name == "console":
        return ConsoleTransport
    if otlp.protocol == "grpc":
        # grpc cannot be imported once interpreter shutdown has begun (it starts thread pools at import),
        # and a script that ends at once makes its first export at exit: import it now. The encoder too.
        import grpc
        from google.rpc import error_details_pb2, status_pb2  # noqa: F401
        from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans  # noqa: F401

        return lambda: GrpcTransport(otlp, grpc)
    return lambda: HttpTransport(otlp, json=otlp.protocol == "http/json")


def _read(path: str | None) -> bytes | None:
    if not path:
        return None
    with open(path, "rb") as f:
        return f.read()
