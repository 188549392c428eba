"""A real OTLP trace receiver for tests: HTTP (protobuf and JSON) and gRPC, built on ``opentelemetry-proto``.

It decodes every request the way a collector would, keeps what it received, and can be told to misbehave
(erroring, throttling, slow, dropping connections, rejecting requests) so that tests can check how the
agent copes with a collector that is down, slow or erroring.

    with OTLPReceiver() as receiver:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.http_endpoint   # or receiver.grpc_endpoint
        ...
        spans = receiver.wait_for_spans(2)

Run it on its own to look at what a traced program sends::

    python -m tests.otlp_receiver --http-port 4318 --grpc-port 4317 --jsonl
"""

from __future__ import annotations

import base64
import gzip
import json
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2

MODES = ("ok", "error", "throttle", "slow", "drop", "bad_request")


@dataclass(frozen=True)
class ReceivedSpan:
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: int
    attributes: dict[str, Any]
    resource: dict[str, Any]
    scope: str
    scope_version: str
    status_code: int
    status_message: str
    events: list[tuple[str, dict[str, Any]]]
    links: list[tuple[str, str, dict[str, Any]]]
    start_ns: int
    end_ns: int
    trace_state: str
    flags: int
    transport: str

    @property
    def duration_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6


@dataclass(frozen=True)
class RequestInfo:
    transport: str
    path: str
    headers: dict[str, str]
    content_encoding: str
    body_size: int
    span_count: int
    status: int


@dataclass
class _State:
    mode: str = "ok"
    delay: float = 0.0
    retry_after: float | None = None
    spans: list[ReceivedSpan] = field(default_factory=list)
    requests: list[RequestInfo] = field(default_factory=list)
    payloads: list[bytes] = field(default_factory=list)  # each accepted request, decompressed


def any_value(value: common_pb2.AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return tuple(any_value(v) for v in value.array_value.values)
    if kind == "kvlist_value":
        return key_values(value.kvlist_value.values)
    return getattr(value, kind)


def key_values(items: Iterable[common_pb2.KeyValue]) -> dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in items}


def decode_spans(request: trace_service_pb2.ExportTraceServiceRequest, transport: str) -> list[ReceivedSpan]:
    out = []
    for resource_spans in request.resource_spans:
        resource = key_values(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                out.append(
                    ReceivedSpan(
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        name=span.name,
                        kind=span.kind,
                        attributes=key_values(span.attributes),
                        resource=resource,
                        scope=scope_spans.scope.name,
                        scope_version=scope_spans.scope.version,
                        status_code=span.status.code,
                        status_message=span.status.message,
                        events=[(e.name, key_values(e.attributes)) for e in span.events],
                        links=[
                            (ln.trace_id.hex(), ln.span_id.hex(), key_values(ln.attributes))
                            for ln in span.links
                        ],
                        start_ns=span.start_time_unix_nano,
                        end_ns=span.end_time_unix_nano,
                        trace_state=span.trace_state,
                        flags=span.flags,
                        transport=transport,
                    )
                )
    return out


_HEX_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


def _hex_ids_to_base64(node: Any) -> None:
    """OTLP/JSON writes ids as hex strings; the protobuf JSON mapping expects base64 for bytes fields."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _HEX_ID_FIELDS and isinstance(value, str):
                node[key] = base64.b64encode(bytes.fromhex(value)).decode()
            else:
                _hex_ids_to_base64(value)
    elif isinstance(node, list):
        for item in node:
            _hex_ids_to_base64(item)


def parse_json_request(body: bytes) -> trace_service_pb2.ExportTraceServiceRequest:
    document = json.loads(body)
    _hex_ids_to_base64(document)
    message = trace_service_pb2.ExportTraceServiceRequest()
    json_format.ParseDict(document, message)
    return message


def _decompress(body: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    if encoding in ("", "identity"):
        return body
    raise ValueError(f"unsupported content-encoding {encoding!r}")


# Every request body any receiver in this process accepted (decompressed), for the suite-wide grep for
# planted secrets (tests/e2e/conftest.py).
ALL_PAYLOADS: list[bytes] = []
_ALL_LOCK = threading.Lock()


class OTLPReceiver:
    """OTLP/HTTP on ``http_port`` (0: any free port); with ``grpc``, OTLP/gRPC on ``grpc_port`` too."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        http_port: int = 0,
        grpc_port: int = 0,
        grpc: bool = True,
        on_span: Callable[[ReceivedSpan], None] | None = None,
    ) -> None:
        self.host = host
        self._http_port = http_port
        self._grpc_port = grpc_port
        self._want_grpc = grpc
        self._on_span = on_span
        self._state = _State()
        self._cond = threading.Condition()
        self._http: ThreadingHTTPServer | None = None
        self._http_thread: threading.Thread | None = None
        self._grpc: Any = None

    # -- life cycle ---------------------------------------------------------------------------------

    def start(self) -> OTLPReceiver:
        self._http = ThreadingHTTPServer((self.host, self._http_port), self._handler_class())
        self._http.daemon_threads = True
        self._http_port = self._http.server_address[1]
        self._http_thread = threading.Thread(target=self._http.serve_forever, name="otlp-http", daemon=True)
        self._http_thread.start()
        if self._want_grpc:
            self._start_grpc()
        return self

    def stop(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
        if self._grpc is not None:
            self._grpc.stop(grace=None)
            self._grpc = None

    def __enter__(self) -> OTLPReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def http_endpoint(self) -> str:
        """Base URL, as for ``OTEL_EXPORTER_OTLP_ENDPOINT`` (the exporter appends ``/v1/traces``)."""
        return f"http://{self.host}:{self._http_port}"

    @property
    def grpc_endpoint(self) -> str:
        if not self._want_grpc:
            raise RuntimeError("this receiver was started without gRPC")
        return f"http://{self.host}:{self._grpc_port}"

    # -- what was received --------------------------------------------------------------------------

    @property
    def spans(self) -> list[ReceivedSpan]:
        with self._cond:
            return list(self._state.spans)

    @property
    def requests(self) -> list[RequestInfo]:
        with self._cond:
            return list(self._state.requests)

    @property
    def payloads(self) -> bytes:
        """Every accepted request's body (decompressed; gRPC's re-encoded), concatenated: what a
        collector would have stored, for searching for text that must never be exported."""
        with self._cond:
            return b"".join(self._state.payloads)

    def clear(self) -> None:
        with self._cond:
            self._state.spans.clear()
            self._state.requests.clear()
            self._state.payloads.clear()

    def wait_for_spans(
        self,
        count: int,
        timeout: float = 15.0,
        predicate: Callable[[ReceivedSpan], bool] | None = None,
    ) -> list[ReceivedSpan]:
        """Wait until at least ``count`` spans (matching ``predicate``) arrived; return all that match."""

        def matching() -> list[ReceivedSpan]:
            return [s for s in self._state.spans if predicate is None or predicate(s)]

        deadline = time.monotonic() + timeout
        with self._cond:
            while len(found := matching()) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    names = [s.name for s in self._state.spans]
                    raise AssertionError(
                        f"expected {count} spans within {timeout}s, got {len(found)} matching; "
                        f"all received: {names}"
                    )
                self._cond.wait(left)
            return found

    def wait_for_requests(self, count: int, timeout: float = 15.0) -> list[RequestInfo]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._state.requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} requests, got {len(self._state.requests)}")
                self._cond.wait(left)
            return list(self._state.requests)

    def set_mode(self, mode: str, delay: float = 0.0, retry_after: float | None = None) -> None:
        """ok | error (503/UNAVAILABLE) | throttle (429/RESOURCE_EXHAUSTED) | slow (``delay`` s, then ok)
        | drop (connection closed, no answer) | bad_request (400/INVALID_ARGUMENT, spans discarded)."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        with self._cond:
            self._state.mode, self._state.delay, self._state.retry_after = mode, delay, retry_after

    # -- shared by both transports ------------------------------------------------------------------

    def _current_mode(self) -> tuple[str, float, float | None]:
        with self._cond:
            return self._state.mode, self._state.delay, self._state.retry_after

    def _record(self, info: RequestInfo, spans: list[ReceivedSpan], payload: bytes = b"") -> None:
        if payload:
            with _ALL_LOCK:
                ALL_PAYLOADS.append(payload)
        with self._cond:
            self._state.payloads.append(payload)
            self._state.requests.append(info)
            self._state.spans.extend(spans)
            self._cond.notify_all()
        if self._on_span is not None:
            for span in spans:
                self._on_span(span)

    # -- HTTP ---------------------------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                receiver._handle_http(self)

            def do_GET(self) -> None:
                self._reply(405, b"", "text/plain")

            def _reply(
                self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for key, value in (extra or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

        return Handler

    def _handle_http(self, handler: Any) -> None:
        headers = {k.lower(): v for k, v in handler.headers.items()}
        length = int(headers.get("content-length") or 0)
        raw = handler.rfile.read(length)
        content_type = headers.get("content-type", "").split(";")[0].strip()
        is_json = content_type == "application/json"
        transport = "http/json" if is_json else "http/protobuf"
        encoding = headers.get("content-encoding", "").strip().lower()
        mode, delay, retry_after = self._current_mode()

        def info(status: int, span_count: int = 0) -> RequestInfo:
            return RequestInfo(transport, handler.path, headers, encoding, len(raw), span_count, status)

        def answer(status: int, message: str = "", extra: dict[str, str] | None = None) -> None:
            if is_json:
                body = json.dumps({"code": status, "message": message} if message else {}).encode()
            elif message:
                body = message.encode()
            else:
                body = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
            handler._reply(status, body, "application/json" if is_json else "application/x-protobuf", extra)

        if handler.path != "/v1/traces":
            self._record(info(404), [])
            answer(404, "not found")
            return
        if mode == "drop":
            self._record(info(0), [])
            handler.close_connection = True
            return
        if mode == "slow":
            time.sleep(delay)
        if mode == "error":
            self._record(info(503), [])
            answer(503, "collector unavailable")
            return
        if mode == "throttle":
            self._record(info(429), [])
            extra = {"Retry-After": str(int(retry_after))} if retry_after is not None else None
            answer(429, "too many requests", extra)
            return
        if mode == "bad_request":
            self._record(info(400), [])
            answer(400, "rejected")
            return
        try:
            body = _decompress(raw, encoding)
            if is_json:
                request = parse_json_request(body)
            elif content_type == "application/x-protobuf":
                request = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
            else:
                raise ValueError(f"unsupported content-type {content_type!r}")
            spans = decode_spans(request, transport)
        except Exception as exc:
            self._record(info(400), [])
            answer(400, f"undecodable request: {exc}")
            return
        self._record(info(200, len(spans)), spans, body)
        answer(200)

    # -- gRPC ---------------------------------------------------------------------------------------

    def _start_grpc(self) -> None:
        import grpc
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

        receiver = self

        class Service(trace_service_pb2_grpc.TraceServiceServicer):  # type: ignore[misc]
            def Export(self, request: Any, context: Any) -> Any:
                return receiver._handle_grpc(request, context, grpc)

        self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Service(), self._grpc)
        self._grpc_port = self._grpc.add_insecure_port(f"{self.host}:{self._grpc_port}")
        self._grpc.start()

    def _handle_grpc(self, request: Any, context: Any, grpc: Any) -> Any:
        headers = {k.lower(): v for k, v in context.invocation_metadata()}
        encoding = headers.get("grpc-encoding", "")
        size = request.ByteSize()
        mode, delay, retry_after = self._current_mode()
        path = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

        def info(status: int, span_count: int = 0) -> RequestInfo:
            return RequestInfo("grpc", path, headers, encoding, size, span_count, status)

        if mode == "slow":
            time.sleep(delay)
        failures = {
            "drop": grpc.StatusCode.UNAVAILABLE,
            "error": grpc.StatusCode.UNAVAILABLE,
            "throttle": grpc.StatusCode.RESOURCE_EXHAUSTED,
            "bad_request": grpc.StatusCode.INVALID_ARGUMENT,
        }
        if mode in failures:
            code = failures[mode]
            self._record(info(code.value[0]), [])
            message = f"receiver in mode {mode}"
            if mode == "throttle" and retry_after is not None:
                context.set_trailing_metadata(
                    (("grpc-status-details-bin", _retry_info(code, message, retry_after)),)
                )
            context.abort(code, message)
        spans = decode_spans(request, "grpc")
        self._record(info(0, len(spans)), spans, request.SerializeToString())
        return trace_service_pb2.ExportTraceServiceResponse()


def _retry_info(code: Any, message: str, seconds: float) -> bytes:
    """A google.rpc.Status carrying RetryInfo, as gRPC servers send it in the trailing metadata."""
    from google.rpc import error_details_pb2, status_pb2

    info = error_details_pb2.RetryInfo()
    info.retry_delay.seconds = int(seconds)
    info.retry_delay.nanos = int((seconds - int(seconds)) * 1e9)
    status = status_pb2.Status(code=code.value[0], message=message)
    status.details.add().Pack(info)
    data: bytes = status.SerializeToString()
    return data


def _main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Print the spans an OTLP exporter sends.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--http-port", type=int, default=4318)
    parser.add_argument("--grpc-port", type=int, default=4317)
    parser.add_argument("--jsonl", action="store_true", help="one JSON object per span")
    args = parser.parse_args()

    def show(span: ReceivedSpan) -> None:
        if args.jsonl:
            record = dict(span.__dict__)
            print(json.dumps(record, default=str), flush=True)
        else:
            parent = span.parent_span_id or "-"
            print(
                f"{span.trace_id} {span.span_id} <- {parent} {span.name} {span.duration_ms:.2f}ms", flush=True
            )

    with OTLPReceiver(args.host, args.http_port, args.grpc_port, on_span=show) as receiver:
        print(f"listening: http {receiver.http_endpoint}  grpc {receiver.grpc_endpoint}", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    _main()
