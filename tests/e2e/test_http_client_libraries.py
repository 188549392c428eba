"""Every client library across a real two-service chain, header capture and query redaction, custom
httpx transports, streamed downloads, and urllib3 1.26 — all through the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import AUTOTRACE, STREAM_PAUSE, run, traced_env, warnings_in, write_script
from tests.e2e.test_http_client import CLIENT, SERVER
from tests.e2e.test_server_spans import APPS, REPO, free_port, wait_until_listening
from tests.otlp_receiver import OTLPReceiver

LIBRARIES = ("urllib", "requests", "urllib3", "httpx", "httpx-async", "aiohttp")

# One caller that can GET a URL with each library; sourced by several apps below.
CALLERS = """
import asyncio, json, sys, time, urllib.request
import aiohttp, httpx, requests, urllib3
from opentelemetry import trace

tracer = trace.get_tracer("caller")


def get(library, url, headers=None):
    headers = headers or {}
    if library == "urllib":
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as r:
            return r.read()
    if library == "requests":
        return requests.get(url, headers=headers).content
    if library == "urllib3":
        return urllib3.PoolManager().request("GET", url, headers=headers).data
    if library == "httpx":
        return httpx.get(url, headers=headers).content
    if library == "httpx-async":
        async def go():
            async with httpx.AsyncClient() as client:
                return (await client.get(url, headers=headers)).content
        return asyncio.run(go())
    if library == "aiohttp":
        async def go():
            async with aiohttp.ClientSession() as session:
                async with session.get(url, headers=headers) as r:
                    return await r.read()
        return asyncio.run(go())
    raise ValueError(library)
"""

CHAIN_APP = (
    CALLERS
    + """
base = sys.argv[1]
for n, library in enumerate(sys.argv[2:]):
    with tracer.start_as_current_span("call-" + library):
        print(library, get(library, f"{base}/api/users/{n}").decode())
"""
)


@pytest.fixture
def users_service(receiver: OTLPReceiver) -> Iterator[str]:
    """The Starlette test app under uvicorn and the real CLI, as service ``users``."""
    port = free_port()
    args = [AUTOTRACE, "uvicorn", "--host", "127.0.0.1", "--port", str(port), f"{APPS}.starlette_app:app"]
    env = traced_env(receiver, PYTHONPATH=str(REPO), OTEL_SERVICE_NAME="users")
    server = subprocess.Popen(args, env=env, cwd=REPO, stderr=subprocess.DEVNULL)
    try:
        wait_until_listening(port, server)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=15)


def test_each_library_joins_two_services_into_one_trace(
    tmp_path: Path, receiver: OTLPReceiver, users_service: str
) -> None:
    app = write_script(tmp_path, "caller.py", CHAIN_APP)
    result = run([AUTOTRACE, "python", str(app), users_service, *LIBRARIES], traced_env(receiver))
    assert result.returncode == 0, result.stderr
    assert warnings_in(result.stderr) == []
    assert result.stdout.splitlines() == [f"{lib} user {n}" for n, lib in enumerate(LIBRARIES)]
    # Per library: call span, CLIENT span, the users service's SERVER span and its child "load-user".
    spans = receiver.wait_for_spans(4 * len(LIBRARIES), timeout=20)
    for library in LIBRARIES:
        (call,) = [s for s in spans if s.name == f"call-{library}"]
        trace_spans = [s for s in spans if s.trace_id == call.trace_id]
        assert len(trace_spans) == 4, (library, [s.name for s in trace_spans])
        (client,) = [s for s in trace_spans if s.kind == CLIENT]
        (server,) = [s for s in trace_spans if s.kind == SERVER]
        (child,) = [s for s in trace_spans if s.name == "load-user"]
        assert client.parent_span_id == call.span_id, library
        assert server.parent_span_id == client.span_id, library
        assert child.parent_span_id == server.span_id, library
        assert server.name == "GET /api/users/{user_id}"
        assert client.resource["service.name"] == "caller" and server.resource["service.name"] == "users"


CAPTURE_APP = (
    CALLERS
    + """
base = sys.argv[1]
headers = {"X-Mine": "mine", "Authorization": "Bearer top-secret", "X-Api-Key": "k-123"}
for library in sys.argv[2:]:
    sent = json.loads(get(library, base + "/echo?token=t0k3n&sig=s1g&page=2", dict(headers)))
    print(library, sent["x-mine"], sent["authorization"])
print(json.dumps(headers))
"""
)


def test_header_capture_and_redaction_on_client_spans(
    tmp_path: Path, receiver: OTLPReceiver, echo: str
) -> None:
    app = write_script(tmp_path, "app.py", CAPTURE_APP)
    env = traced_env(
        receiver,
        OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST="x-mine,authorization,x-api-key",
        OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_RESPONSE="X-Resp,Set-Cookie",
        AUTOTRACE_SANITIZE_FIELDS="x-api-key",
        AUTOTRACE_REDACT_QUERY_PARAMS="token",
    )
    result = run([AUTOTRACE, "python", str(app), echo, *LIBRARIES], env)
    assert result.returncode == 0, result.stderr
    assert warnings_in(result.stderr) == []
    *lines, caller_headers = result.stdout.splitlines()
    # The server got the real values; the caller's own dict is as it was.
    assert lines == [f"{lib} mine Bearer top-secret" for lib in LIBRARIES]
    assert json.loads(caller_headers) == {
        "X-Mine": "mine",
        "Authorization": "Bearer top-secret",
        "X-Api-Key": "k-123",
    }
    clients = receiver.wait_for_spans(len(LIBRARIES))
    assert len(clients) == len(LIBRARIES)
    for span in clients:
        attributes = span.attributes
        assert attributes["url.full"] == f"{echo}/echo?token=REDACTED&sig=REDACTED&page=2"
        assert attributes["http.request.header.x-mine"] == ("mine",)
        assert attributes["http.request.header.authorization"] == ("[REDACTED]",)
        assert attributes["http.request.header.x-api-key"] == ("[REDACTED]",)
        assert attributes["http.response.header.x-resp"] == ("yes",)
        assert attributes["http.response.header.set-cookie"] == ("[REDACTED]",)
    everything = repr([s.attributes for s in clients])
    for secret in ("top-secret", "k-123", "t0k3n", "s1g", "secret-cookie"):
        assert secret not in everything


STREAM_APP = (
    CALLERS
    + """
def stream(library, url):
    '''Read a streamed body; returns the time (ns) the headers were in and the time the body was.'''
    if library == "urllib":
        r = urllib.request.urlopen(url); headers_in = time.time_ns(); r.read()
    elif library == "requests":
        r = requests.get(url, stream=True); headers_in = time.time_ns(); r.content
    elif library == "urllib3":
        r = urllib3.PoolManager().request("GET", url, preload_content=False)
        headers_in = time.time_ns(); r.read(); r.release_conn()
    elif library == "httpx":
        with httpx.stream("GET", url) as r:
            headers_in = time.time_ns(); r.read()
    elif library == "httpx-async":
        async def go():
            async with httpx.AsyncClient() as client, client.stream("GET", url) as r:
                t = time.time_ns(); await r.aread(); return t
        headers_in = asyncio.run(go())
    else:
        async def go():
            async with aiohttp.ClientSession() as session, session.get(url) as r:
                t = time.time_ns(); await r.read(); return t
        headers_in = asyncio.run(go())
    return headers_in, time.time_ns()

base = sys.argv[1]
times = {}
for library in sys.argv[2:]:
    with tracer.start_as_current_span("read-" + library):
        times[library] = stream(library, base + "/stream")
print(json.dumps(times))
"""
)


def test_streamed_download_span_ends_when_the_headers_are_in(
    tmp_path: Path, receiver: OTLPReceiver, echo: str
) -> None:
    app = write_script(tmp_path, "app.py", STREAM_APP)
    result = run([AUTOTRACE, "python", str(app), echo, *LIBRARIES], traced_env(receiver))
    assert result.returncode == 0, result.stderr
    times = json.loads(result.stdout)
    spans = receiver.wait_for_spans(2 * len(LIBRARIES))
    for library in LIBRARIES:
        (reader,) = [s for s in spans if s.name == f"read-{library}"]
        (client,) = [s for s in spans if s.kind == CLIENT and s.parent_span_id == reader.span_id]
        headers_in, body_in = times[library]
        # The body came STREAM_PAUSE after the headers; the span ended before the body was read.
        assert body_in - headers_in >= STREAM_PAUSE * 0.9e9, library
        assert client.end_ns <= headers_in, library
        assert client.attributes["http.response.status_code"] == 200


TRANSPORT_APP = """
import json, sys, httpx
from opentelemetry import trace

class Counting(httpx.HTTPTransport):
    calls = 0
    def handle_request(self, request):
        Counting.calls += 1
        return super().handle_request(request)

class Canned(httpx.BaseTransport):
    '''A transport that never touches the network: still one span, context still injected.'''
    def handle_request(self, request):
        return httpx.Response(200, json={"traceparent": request.headers.get("traceparent")})

base = sys.argv[1]
with trace.get_tracer("app").start_as_current_span("work"):
    with httpx.Client(transport=Counting()) as client:
        subclass = client.get(base + "/a").json()["traceparent"]
    with httpx.Client(mounts={"http://canned.test": Canned()}) as client:
        mounted = client.get("http://canned.test/b").json()["traceparent"]
print(json.dumps({"subclass": subclass, "mounted": mounted, "calls": Counting.calls}))
"""


def test_httpx_transport_subclasses_and_mounts(tmp_path: Path, receiver: OTLPReceiver, echo: str) -> None:
    app = write_script(tmp_path, "app.py", TRANSPORT_APP)
    result = run([AUTOTRACE, "python", str(app), echo], traced_env(receiver))
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["calls"] == 1
    spans = receiver.wait_for_spans(3)
    (work,) = [s for s in spans if s.name == "work"]
    subclass, mounted = sorted((s for s in spans if s.kind == CLIENT), key=lambda s: s.start_ns)
    assert mounted.attributes["url.full"] == "http://canned.test/b"
    for span, sent in ((subclass, out["subclass"]), (mounted, out["mounted"])):
        assert span.parent_span_id == work.span_id
        assert sent.split("-")[1:3] == [work.trace_id, span.span_id]


URLLIB3_APP = """
import json, sys, urllib3
from opentelemetry import trace

base = sys.argv[1]
with trace.get_tracer("app").start_as_current_span("work"):
    pool = urllib3.PoolManager()
    retry = urllib3.Retry(total=1, status_forcelist=[503], backoff_factor=0, raise_on_status=False)
    sent = json.loads(pool.request("GET", base + "/redirect").data)
    status = pool.request("GET", base + "/status/503", retries=retry).status
print(json.dumps({"version": urllib3.__version__, "sent": sent, "status": status}))
"""


def _urllib3_1_folder() -> str:
    """The folder holding urllib3 1.26 (``scripts/test.sh`` installs it there, beside 2.x in the venv)."""
    folder = REPO / ".deps" / "urllib3-1"
    if not (folder / "urllib3").is_dir():
        if os.environ.get("AUTOTRACE_REQUIRE_SERVICES"):
            pytest.fail(f"urllib3 1.26 is not installed in {folder}; scripts/test.sh installs it")
        pytest.skip(f"urllib3 1.26 is not installed in {folder} (scripts/test.sh installs it)")
    return str(folder)


@pytest.mark.parametrize("line", ["1.26", "2"])
def test_urllib3_pool_manager_redirects_and_retries(
    tmp_path: Path, receiver: OTLPReceiver, echo: str, line: str
) -> None:
    app = write_script(tmp_path, "app.py", URLLIB3_APP)
    extra = {"PYTHONPATH": _urllib3_1_folder()} if line == "1.26" else {}
    result = run([AUTOTRACE, "python", str(app), echo], traced_env(receiver, **extra))
    assert result.returncode == 0, result.stderr
    assert warnings_in(result.stderr) == []
    out: dict[str, Any] = json.loads(result.stdout)
    assert out["version"].startswith(line + ".") and out["status"] == 503
    spans = receiver.wait_for_spans(5)
    (work,) = [s for s in spans if s.name == "work"]
    clients = sorted((s for s in spans if s.kind == CLIENT), key=lambda s: s.start_ns)
    assert {c.parent_span_id for c in clients} == {work.span_id}
    codes = [
        (c.attributes["http.response.status_code"], c.attributes.get("http.request.resend_count"))
        for c in clients
    ]
    assert codes == [(302, None), (200, 1), (503, None), (503, 1)]
    assert out["sent"]["traceparent"].split("-")[1:3] == [work.trace_id, clients[1].span_id]
