"""SERVER spans for every framework and server, through the real CLI, over real HTTP on loopback.

Each server configuration is started once (module scope) under ``autotrace`` with header capture,
an excluded URL and ``traceresponse`` on; every test sends its own trace id and looks only at spans
of that trace, so the tests of one configuration do not see each other's spans.
"""

from __future__ import annotations

import http.client
import os
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import AUTOTRACE, stop, traced_env
from tests.otlp_receiver import OTLPReceiver, ReceivedSpan

REPO = Path(__file__).resolve().parents[2]
APPS = "tests.e2e.webapps"
SERVER, INTERNAL = 2, 1
UNSET, ERROR = 0, 2

# name: (command, framework)
CONFIGS: dict[str, tuple[list[str], str]] = {
    "flask-gunicorn": (["gunicorn", "-w", "2", "-b", "127.0.0.1:{port}", f"{APPS}.flask_app:app"], "flask"),
    "flask-werkzeug": (["python", "-m", f"{APPS}.flask_app", "{port}"], "flask"),
    "flask-uvicorn-wsgi": (
        ["uvicorn", "--interface", "wsgi", "--port", "{port}", f"{APPS}.flask_app:app"],
        "flask",
    ),
    "django-gunicorn": (["gunicorn", "-b", "127.0.0.1:{port}", f"{APPS}.django_site:application"], "django"),
    "django-uvicorn": (["uvicorn", "--port", "{port}", f"{APPS}.django_site:asgi_application"], "django"),
    "starlette-uvicorn": (["uvicorn", "--port", "{port}", f"{APPS}.starlette_app:app"], "starlette"),
    "starlette-hypercorn": (
        ["hypercorn", "-b", "127.0.0.1:{port}", f"{APPS}.starlette_app:app"],
        "starlette",
    ),
    "fastapi-uvicorn": (["uvicorn", "--port", "{port}", f"{APPS}.fastapi_app:app"], "fastapi"),
    "fastapi-hypercorn": (["hypercorn", "-b", "127.0.0.1:{port}", f"{APPS}.fastapi_app:app"], "fastapi"),
    "fastapi-gunicorn-uvicornworker": (
        [
            "gunicorn",
            "-k",
            "uvicorn.workers.UvicornWorker",
            "-b",
            "127.0.0.1:{port}",
            f"{APPS}.fastapi_app:app",
        ],
        "fastapi",
    ),
    "wsgi-waitress": (["waitress-serve", "--listen=127.0.0.1:{port}", f"{APPS}.raw_wsgi:app"], "raw"),
    "wsgi-wsgiref": (["python", "-m", f"{APPS}.raw_wsgi", "{port}"], "raw"),
    "asgi-uvicorn": (["uvicorn", "--port", "{port}", f"{APPS}.raw_asgi:app"], "raw"),
    "asgi-gunicorn-asgiworker": (
        ["gunicorn", "-k", "asgi", "-b", "127.0.0.1:{port}", f"{APPS}.raw_asgi:app"],
        "raw",
    ),
}

# framework: (path of user 7, route template or None when the app has no routes)
USER_ROUTE = {
    "flask": ("/users/7", "/users/<int:user_id>"),
    "django": ("/users/7", "/users/<int:user_id>"),
    "starlette": ("/api/users/7", "/api/users/{user_id}"),
    "fastapi": ("/api/users/7", "/api/users/{user_id}"),
    "raw": ("/users/7", None),
}


@dataclass
class Served:
    name: str
    framework: str
    port: int
    receiver: OTLPReceiver
    process: subprocess.Popen[str]

    def get(
        self,
        path: str,
        headers: list[tuple[str, str]] = (),
        method: str = "GET",  # type: ignore[assignment]
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.putrequest(method, path)
            for key, value in headers:
                conn.putheader(key, value)
            conn.endheaders()
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            conn.close()

    def spans_of(self, trace_id: str, count: int, settle: float = 0.4) -> list[ReceivedSpan]:
        """Wait for ``count`` spans of the trace, then a moment more: any extra one would show."""
        self.receiver.wait_for_spans(count, timeout=20, predicate=lambda s: s.trace_id == trace_id)
        time.sleep(settle)
        return [s for s in self.receiver.spans if s.trace_id == trace_id]

    def none_of(self, trace_id: str) -> list[ReceivedSpan]:
        time.sleep(1.0)  # bounded settle: absence cannot be waited for
        return [s for s in self.receiver.spans if s.trace_id == trace_id]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_listening(port: int, process: subprocess.Popen[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("server did not start listening")


def parent_header(trace_id: str, parent: str = "b7ad6b7169203331", flags: str = "01") -> tuple[str, str]:
    return ("traceparent", f"00-{trace_id}-{parent}-{flags}")


def new_trace_id() -> str:
    return secrets.token_hex(16)


def server_spans(spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
    return [s for s in spans if s.kind == SERVER]


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    command, framework = CONFIGS[request.param]
    port = free_port()
    with OTLPReceiver(grpc=False) as receiver:
        env = traced_env(
            receiver,
            PYTHONPATH=str(REPO),
            OTEL_SERVICE_NAME=request.param,
            OTEL_BSP_SCHEDULE_DELAY="100",
            OTEL_PYTHON_EXCLUDED_URLS="healthz",
            OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST="x-req,authorization,x-tenant-secret",
            AUTOTRACE_SANITIZE_FIELDS="X-Tenant-Secret",
            OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_RESPONSE="x-resp,set-cookie",
            AUTOTRACE_TRACE_RESPONSE="true",
        )
        args = [AUTOTRACE, *(part.format(port=port) for part in command)]
        if args[1] == "uvicorn":
            args[2:2] = ["--host", "127.0.0.1", "--log-level", "warning"]
        log = tmp_path_factory.mktemp("server") / "stderr.txt"
        with log.open("w") as stderr:
            process = subprocess.Popen(
                args, env=env, cwd=REPO, stderr=stderr, stdout=subprocess.DEVNULL, text=True
            )
            try:
                wait_until_listening(port, process)
                yield Served(request.param, framework, port, receiver, process)
            finally:
                stop(process)
        text = log.read_text()
        internal = [line for line in text.splitlines() if "autotrace: WARNING" in line]
        assert internal == [], text


def test_route_attributes_and_trace_continuation(served: Served) -> None:
    trace_id = new_trace_id()
    path, template = USER_ROUTE[served.framework]
    headers = [
        parent_header(trace_id),
        ("tracestate", "vendor=value,other=x"),
        ("x-req", "hello"),
        ("authorization", "Bearer s3cret"),
        ("x-tenant-secret", "t0ps3cret"),
        ("user-agent", "e2e-client/1.0"),
    ]
    status, response_headers, body = served.get(path + "?q=1&token=abc", headers)
    assert (status, body) == (200, b"user 7")

    spans = served.spans_of(trace_id, 2)
    (server,) = server_spans(spans)
    (child,) = [s for s in spans if s.name == "load-user"]
    assert len(spans) == 2, [s.name for s in spans]
    assert server.name == (f"GET {template}" if template else "GET")
    assert server.parent_span_id == "b7ad6b7169203331"
    assert server.trace_state == "vendor=value,other=x"
    assert child.parent_span_id == server.span_id
    assert server.status_code == UNSET
    attrs = server.attributes
    expected = {
        "http.request.method": "GET",
        "url.path": path,
        "url.query": "q=1&token=REDACTED",
        "url.scheme": "http",
        "http.response.status_code": 200,
        "server.address": "127.0.0.1",
        "server.port": served.port,
        "client.address": "127.0.0.1",
        "user_agent.original": "e2e-client/1.0",
        "network.protocol.version": "1.1",
        "http.request.header.x-req": ("hello",),
        "http.request.header.authorization": ("[REDACTED]",),
        "http.request.header.x-tenant-secret": ("[REDACTED]",),
        "http.response.header.x-resp": ("bye",),
        "http.response.header.set-cookie": ("[REDACTED]",),
    }
    assert {k: attrs.get(k) for k in expected} == expected
    assert attrs.get("http.route") == template
    assert "s3cret" not in repr(server) and "abc" not in repr(attrs)
    assert response_headers["traceresponse"] == f"00-{trace_id}-{server.span_id}-01"


def test_5xx_is_an_error_and_4xx_is_not(served: Served) -> None:
    failing = new_trace_id()
    status, _, _ = served.get("/fail503", [parent_header(failing)])
    assert status == 503
    (span,) = served.spans_of(failing, 1)
    assert span.status_code == ERROR
    assert span.attributes["http.response.status_code"] == 503
    assert span.attributes["error.type"] == "503"

    missing = new_trace_id()
    status, _, _ = served.get("/no/such/page", [parent_header(missing)])
    assert status == 404
    (span,) = served.spans_of(missing, 1)
    assert (span.name, span.status_code) == ("GET", UNSET)
    assert span.attributes["http.response.status_code"] == 404
    assert "http.route" not in span.attributes and "error.type" not in span.attributes


def test_unhandled_exception_records_the_500_that_was_sent(served: Served) -> None:
    trace_id = new_trace_id()
    status, _, _ = served.get("/boom", [parent_header(trace_id)])
    assert status == 500
    (span,) = served.spans_of(trace_id, 1)
    assert span.status_code == ERROR
    assert span.attributes["http.response.status_code"] == 500
    assert span.attributes["error.type"].endswith("Boom")
    (event,) = [attrs for name, attrs in span.events if name == "exception"]
    assert event["exception.type"].endswith("Boom")
    assert event["exception.message"] == "kaboom"


def test_streaming_response_is_one_span_covering_the_whole_body(served: Served) -> None:
    trace_id = new_trace_id()
    status, _, body = served.get("/stream", [parent_header(trace_id)])
    assert (status, body) == (200, b"chunk0\nchunk1\nchunk2\n")
    (span,) = served.spans_of(trace_id, 1)
    assert span.kind == SERVER
    assert span.duration_ms >= 350, span.duration_ms  # two 200 ms pauses between the chunks


def test_excluded_url_has_no_span_but_the_context_flows_on(served: Served) -> None:
    trace_id = new_trace_id()
    status, _, body = served.get("/healthz", [parent_header(trace_id)])
    assert (status, body) == (200, trace_id.encode())
    assert served.none_of(trace_id) == []


def test_unsampled_parent_is_honoured(served: Served) -> None:
    trace_id = new_trace_id()
    path, _ = USER_ROUTE[served.framework]
    status, response_headers, _ = served.get(path, [parent_header(trace_id, flags="00")])
    assert status == 200
    assert response_headers["traceresponse"].endswith("-00")
    assert served.none_of(trace_id) == []


@pytest.mark.parametrize(
    "bad",
    [
        [("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331")],
        [("traceparent", "00-00000000000000000000000000000000-b7ad6b7169203331-01")],
        [("traceparent", "00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01")],
        [
            ("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
            ("traceparent", "00-0af7651916cd43dd8448eb211c80319d-b7ad6b7169203332-01"),
        ],
    ],
    ids=["short", "zero-trace-id", "upper-case", "two-headers"],
)
def test_malformed_traceparent_starts_a_new_trace(served: Served, bad: list[tuple[str, str]]) -> None:
    marker = secrets.token_hex(8)
    path, _ = USER_ROUTE[served.framework]
    status, _, _ = served.get(path, [*bad, ("tracestate", "vendor=value"), ("x-req", marker)])
    assert status == 200
    (span,) = served.receiver.wait_for_spans(
        1, timeout=20, predicate=lambda s: s.attributes.get("http.request.header.x-req") == (marker,)
    )
    assert span.parent_span_id == "" and span.trace_state == ""
    assert span.trace_id not in ("0af7651916cd43dd8448eb211c80319c", "0" * 32)


def test_unknown_method_is_other_and_the_original_is_kept(served: Served) -> None:
    trace_id = new_trace_id()
    path, _ = USER_ROUTE[served.framework]
    status, _, _ = served.get(path, [parent_header(trace_id)], method="FROB")
    assert status < 500
    spans = served.spans_of(trace_id, 1)
    (span,) = server_spans(spans)
    assert span.name.split()[0] == "HTTP"
    assert span.attributes["http.request.method"] == "_OTHER"
    assert span.attributes["http.request.method_original"] == "FROB"


def test_only_request_spans_and_never_lifespan(served: Served) -> None:
    names = {s.name for s in served.receiver.spans}
    assert names, "the tests before this one made spans"
    assert all(n == "load-user" or n.split()[0] in ("GET", "HTTP") for n in names), names
    assert len({s.resource["process.pid"] for s in server_spans(served.receiver.spans)}) >= 1
    assert os.environ.get("OTEL_SDK_DISABLED") is None
