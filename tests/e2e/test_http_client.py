"""CLIENT spans from the ``http.client`` layer (urllib.request, and requests/urllib3 above it), through
the real CLI, against a real loopback server that echoes the headers it received."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.e2e.conftest import AUTOTRACE, run, traced_env, warnings_in, write_script
from tests.e2e.test_server_spans import APPS, REPO, Served, free_port, wait_until_listening
from tests.otlp_receiver import OTLPReceiver

CLIENT, SERVER, INTERNAL = 3, 2, 1
UNSET, ERROR = 0, 2


URLLIB_APP = """
import json, sys, urllib.error, urllib.request
from opentelemetry import baggage, context, trace

base = sys.argv[1]
tracer = trace.get_tracer("app")
token = context.attach(baggage.set_baggage("user.id", "u-42"))
with tracer.start_as_current_span("work"):
    with urllib.request.urlopen(base + "/echo?q=1&sig=abc") as r:
        print(r.read().decode())
    try:
        urllib.request.urlopen(base + "/status/404")
    except urllib.error.HTTPError as e:
        print("status", e.code)
    try:
        urllib.request.urlopen("http://127.0.0.1:1/refused", timeout=5)
    except OSError as e:
        print("refused", type(e).__name__)
    try:
        urllib.request.urlopen("http://user:s3cret@no-such-host.invalid:80/x", timeout=5)
    except OSError as e:
        print("dns", type(e).__name__)
"""


def spans_by_kind(spans: list[Any], kind: int) -> list[Any]:
    return [s for s in spans if s.kind == kind]


def test_urllib_client_spans_and_injected_context(tmp_path: Path, receiver: OTLPReceiver, echo: str) -> None:
    app = write_script(tmp_path, "app.py", URLLIB_APP)
    result = run([AUTOTRACE, "python", str(app), echo], traced_env(receiver))
    assert result.returncode == 0, result.stderr
    assert warnings_in(result.stderr) == []
    lines = result.stdout.splitlines()
    sent = json.loads(lines[0])
    assert lines[1:] == ["status 404", "refused URLError", "dns URLError"]

    spans = receiver.wait_for_spans(5)
    (work,) = [s for s in spans if s.name == "work"]
    clients = spans_by_kind(spans, CLIENT)
    assert len(clients) == 4, [s.attributes.get("url.full") for s in clients]
    ok, missing, refused, dns = sorted(clients, key=lambda s: s.start_ns)
    assert all(c.parent_span_id == work.span_id and c.trace_id == work.trace_id for c in clients)
    # The header the server got names the CLIENT span as parent, in the current trace.
    version, trace_id, parent_id, flags = sent["traceparent"].split("-")
    assert (version, trace_id, parent_id) == ("00", work.trace_id, ok.span_id)
    assert int(flags, 16) & 0x01  # sampled (0x02, "random trace id", may be set too)
    assert "baggage" not in sent  # no host is a baggage target by default
    assert ok.name == "GET" and ok.status_code == UNSET
    port = int(echo.rsplit(":", 1)[1])
    assert ok.attributes["url.full"] == f"{echo}/echo?q=1&sig=REDACTED"
    assert ok.attributes["server.address"] == "127.0.0.1" and ok.attributes["server.port"] == port
    assert ok.attributes["http.response.status_code"] == 200
    assert ok.attributes["network.protocol.version"] == "1.0"  # the echo server speaks HTTP/1.0
    assert missing.status_code == ERROR and missing.attributes["error.type"] == "404"
    assert refused.status_code == ERROR
    assert refused.attributes["error.type"] == "ConnectionRefusedError"
    assert [name for name, _ in refused.events] == ["exception"]
    assert dns.status_code == ERROR and dns.attributes["error.type"] == "socket.gaierror"
    assert dns.attributes["url.full"] == "http://no-such-host.invalid/x"
    assert dns.attributes["server.address"] == "no-such-host.invalid"
    assert "s3cret" not in repr(clients)


REQUESTS_APP = """
import sys, requests
from opentelemetry import baggage, context, trace

base = sys.argv[1]
context.attach(baggage.set_baggage("user.id", "u-42"))
with trace.get_tracer("app").start_as_current_span("work"):
    r = requests.get(base + "/redirect", headers={"X-Mine": "1"})
    print(r.status_code, r.json().get("baggage"), r.json().get("traceparent"))
"""


def test_requests_redirect_hops_are_sibling_spans_and_baggage_goes_to_targets(
    tmp_path: Path, receiver: OTLPReceiver, echo: str
) -> None:
    app = write_script(tmp_path, "app.py", REQUESTS_APP)
    env = traced_env(receiver, AUTOTRACE_BAGGAGE_TARGETS="127.0.0.*")
    result = run([AUTOTRACE, "python", str(app), echo], env)
    assert result.returncode == 0, result.stderr
    status, sent_baggage, sent_parent = result.stdout.split()
    assert (status, sent_baggage) == ("200", "user.id=u-42")
    spans = receiver.wait_for_spans(3)
    (work,) = [s for s in spans if s.name == "work"]
    first, second = sorted(spans_by_kind(spans, CLIENT), key=lambda s: s.start_ns)
    assert first.attributes["http.response.status_code"] == 302
    assert second.attributes["url.full"] == f"{echo}/final"
    assert first.parent_span_id == second.parent_span_id == work.span_id
    assert "http.request.resend_count" not in first.attributes
    assert second.attributes["http.request.resend_count"] == 1
    assert sent_parent.split("-")[1:3] == [work.trace_id, second.span_id]


UNSAMPLED_APP = """
import json, sys, urllib.request
from opentelemetry import propagate, context
ctx = propagate.extract({"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"})
context.attach(ctx)
print(json.loads(urllib.request.urlopen(sys.argv[1]).read())["traceparent"])
"""


def test_unsampled_trace_is_still_propagated(tmp_path: Path, receiver: OTLPReceiver, echo: str) -> None:
    app = write_script(tmp_path, "app.py", UNSAMPLED_APP)
    result = run([AUTOTRACE, "python", str(app), echo], traced_env(receiver))
    assert result.returncode == 0, result.stderr
    trace_id, parent, flags = result.stdout.strip().split("-")[1:]
    assert (trace_id, flags) == ("0af7651916cd43dd8448eb211c80319c", "00")
    assert parent != "b7ad6b7169203331"  # a (non-recorded) span of ours sits between
    assert receiver.spans == []


CALLER = """
import sys, urllib.request
from opentelemetry import trace
with trace.get_tracer("caller").start_as_current_span("call-users"):
    print(urllib.request.urlopen(sys.argv[1]).read().decode())
"""


def test_two_services_make_one_connected_trace(tmp_path: Path, receiver: OTLPReceiver) -> None:
    port = free_port()
    server_args = [
        AUTOTRACE,
        "uvicorn",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        f"{APPS}.starlette_app:app",
    ]
    env = traced_env(receiver, PYTHONPATH=str(REPO), OTEL_SERVICE_NAME="users")
    server = subprocess.Popen(server_args, env=env, cwd=REPO, stderr=subprocess.DEVNULL)
    try:
        wait_until_listening(port, server)
        app = write_script(tmp_path, "caller.py", CALLER)
        result = run(
            [AUTOTRACE, "python", str(app), f"http://127.0.0.1:{port}/api/users/7"], traced_env(receiver)
        )
        assert (result.returncode, result.stdout) == (0, "user 7\n"), result.stderr
        Served("chain", "", port, receiver, server).spans_of(receiver.wait_for_spans(1)[0].trace_id, 4)
    finally:
        server.terminate()
        server.wait(timeout=15)
    spans = {s.name: s for s in receiver.spans}
    call, client = spans["call-users"], spans["GET"]
    server_span, child = spans["GET /api/users/{user_id}"], spans["load-user"]
    assert len({s.trace_id for s in receiver.spans}) == 1
    assert client.parent_span_id == call.span_id
    assert server_span.parent_span_id == client.span_id
    assert child.parent_span_id == server_span.span_id
    assert (client.resource["service.name"], server_span.resource["service.name"]) == ("caller", "users")
    assert not [s for s in receiver.spans if "/v1/traces" in str(s.attributes.get("url.full"))]


RETRIES_APP = """
import sys, urllib.request, urllib3
from opentelemetry import trace

base = sys.argv[1]
with trace.get_tracer("app").start_as_current_span("work"):
    retry = urllib3.Retry(total=2, status_forcelist=[503], backoff_factor=0, raise_on_status=False)
    print(urllib3.PoolManager().request("GET", base + "/status/503", retries=retry).status)
    print(urllib.request.urlopen(base + "/redirect").status)
"""


def test_urllib3_retries_and_urllib_redirects_are_counted_resends(
    tmp_path: Path, receiver: OTLPReceiver, echo: str
) -> None:
    app = write_script(tmp_path, "app.py", RETRIES_APP)
    result = run([AUTOTRACE, "python", str(app), echo], traced_env(receiver))
    assert (result.returncode, result.stdout.split()) == (0, ["503", "200"]), result.stderr
    spans = receiver.wait_for_spans(6)
    (work,) = [s for s in spans if s.name == "work"]
    clients = sorted(spans_by_kind(spans, CLIENT), key=lambda s: s.start_ns)
    assert all(c.parent_span_id == work.span_id for c in clients)
    counts = [c.attributes.get("http.request.resend_count") for c in clients]
    statuses = [c.attributes["http.response.status_code"] for c in clients]
    assert list(zip(counts, statuses)) == [(None, 503), (1, 503), (2, 503), (None, 302), (1, 200)]


TIMEOUT_APP = """
import sys, urllib.request, httpx

base = sys.argv[1]
try:
    urllib.request.urlopen(base + "/slow", timeout=0.3)
except TimeoutError as e:
    print("urllib", type(e).__name__)
try:
    httpx.get(base + "/slow", timeout=0.3)
except httpx.TimeoutException as e:
    print("httpx", type(e).__name__)
"""


def test_timeouts_end_the_span_with_the_exception(tmp_path: Path, receiver: OTLPReceiver, echo: str) -> None:
    app = write_script(tmp_path, "app.py", TIMEOUT_APP)
    result = run([AUTOTRACE, "python", str(app), echo], traced_env(receiver))
    assert result.stdout.split() == ["urllib", "TimeoutError", "httpx", "ReadTimeout"], result.stderr
    spans = sorted(receiver.wait_for_spans(2), key=lambda s: s.start_ns)
    assert [s.attributes["error.type"] for s in spans] == ["TimeoutError", "httpx.ReadTimeout"]
    assert all(s.status_code == ERROR and "http.response.status_code" not in s.attributes for s in spans)
