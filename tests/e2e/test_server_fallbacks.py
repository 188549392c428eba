"""Framework hooks make the SERVER span when no server hook does, and import order does not matter."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.e2e.conftest import AUTOTRACE, clean_env, traced_env
from tests.e2e.test_server_spans import APPS, REPO, Served, free_port, new_trace_id, parent_header
from tests.e2e.test_server_spans import wait_until_listening as listening
from tests.otlp_receiver import OTLPReceiver

# The server's own instrumentation is disabled: the framework's hook alone must make the span.
FALLBACKS = {
    "flask-without-gunicorn-hook": (
        ["gunicorn", "-b", "127.0.0.1:{port}", f"{APPS}.flask_app:app"],
        "gunicorn",
        "/users/7",
        "GET /users/<int:user_id>",
    ),
    "django-without-gunicorn-hook": (
        ["gunicorn", "-b", "127.0.0.1:{port}", f"{APPS}.django_site:application"],
        "gunicorn",
        "/users/7",
        "GET /users/<int:user_id>",
    ),
    "django-asgi-without-uvicorn-hook": (
        ["uvicorn", "--port", "{port}", f"{APPS}.django_site:asgi_application"],
        "uvicorn",
        "/users/7",
        "GET /users/<int:user_id>",
    ),
    "starlette-without-uvicorn-hook": (
        ["uvicorn", "--port", "{port}", f"{APPS}.starlette_app:app"],
        "uvicorn",
        "/api/users/7",
        "GET /api/users/{user_id}",
    ),
    "fastapi-without-hypercorn-hook": (
        ["hypercorn", "-b", "127.0.0.1:{port}", f"{APPS}.fastapi_app:app"],
        "hypercorn",
        "/api/users/7",
        "GET /api/users/{user_id}",
    ),
}


@pytest.mark.parametrize("name", sorted(FALLBACKS))
def test_framework_hook_alone_makes_exactly_one_span(name: str, receiver: OTLPReceiver) -> None:
    command, disabled, path, span_name = FALLBACKS[name]
    port = free_port()
    args = [AUTOTRACE, *(part.format(port=port) for part in command)]
    if args[1] == "uvicorn":
        args[2:2] = ["--host", "127.0.0.1", "--log-level", "warning"]
    env = traced_env(receiver, PYTHONPATH=str(REPO), OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=disabled)
    process = subprocess.Popen(args, env=env, cwd=REPO, stderr=subprocess.PIPE, text=True)
    try:
        listening(port, process)
        served = Served(name, "", port, receiver, process)
        trace_id = new_trace_id()
        status, _, body = served.get(path, [parent_header(trace_id)])
        assert (status, body) == (200, b"user 7")
        spans = served.spans_of(trace_id, 2)
        servers = [s for s in spans if s.kind == 2]
        assert [s.name for s in servers] == [span_name]
        assert servers[0].scope == "autotrace.server"
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=15)
    assert "autotrace: WARNING" not in stderr, stderr


IMPORTED_FIRST = """
import sys
from flask import Flask                    # the framework is imported before autotrace starts

import autotrace

autotrace.configure()                      # patches what is already imported, at once

app = Flask(__name__)


@app.get("/items/<int:item_id>")
def item(item_id):
    return "item"


from wsgiref.simple_server import WSGIRequestHandler, make_server


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


server = make_server("127.0.0.1", int(sys.argv[1]), app, handler_class=Quiet)
for _ in range(2):                         # the test's "is it listening?" probe, then the request
    server.handle_request()
autotrace.flush()
"""


def test_framework_imported_before_autotrace_is_still_traced(tmp_path: Path, receiver: OTLPReceiver) -> None:
    app = tmp_path / "app.py"
    app.write_text(textwrap.dedent(IMPORTED_FIRST))
    port = free_port()
    env = clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=receiver.http_endpoint, PYTHONPATH=str(REPO))
    process = subprocess.Popen(
        [str(Path(AUTOTRACE).parent / "python"), str(app), str(port)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        listening(port, process)
        served = Served("imported-first", "flask", port, receiver, process)
        trace_id = new_trace_id()
        assert served.get("/items/3", [parent_header(trace_id)])[0] == 200
        (span,) = served.spans_of(trace_id, 1)
        assert span.name == "GET /items/<int:item_id>"
    finally:
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr


@pytest.mark.parametrize(
    "command",
    [
        [
            "uvicorn",
            "--host",
            "127.0.0.1",
            "--log-level",
            "warning",
            "--port",
            "{port}",
            f"{APPS}.starlette_app:app",
        ],
        ["hypercorn", "-b", "127.0.0.1:{port}", f"{APPS}.fastapi_app:app"],
    ],
    ids=["starlette-uvicorn", "fastapi-hypercorn"],
)
def test_websocket_passes_through_untouched(command: list[str], receiver: OTLPReceiver) -> None:
    from websockets.sync.client import connect

    port = free_port()
    args = [AUTOTRACE, *(part.format(port=port) for part in command)]
    process = subprocess.Popen(args, env=traced_env(receiver, PYTHONPATH=str(REPO)), cwd=REPO)
    try:
        listening(port, process)
        with connect(f"ws://127.0.0.1:{port}/ws") as ws:
            ws.send("hello")
            assert ws.recv(timeout=10) == "hello"
        trace_id = new_trace_id()  # an HTTP request afterwards: its span proves export works here
        assert Served("ws", "", port, receiver, process).get("/fail503", [parent_header(trace_id)])[0] == 503
        receiver.wait_for_spans(1, predicate=lambda s: s.trace_id == trace_id)
    finally:
        process.terminate()
        process.wait(timeout=15)
    ours = [s for s in receiver.spans if s.scope == "autotrace.server"]
    assert [s.attributes["url.path"] for s in ours] == ["/fail503"]


def test_asgi_span_ends_with_the_response_not_the_background_task(receiver: OTLPReceiver) -> None:
    port = free_port()
    args = [AUTOTRACE, "uvicorn", "--host", "127.0.0.1", "--port", str(port), f"{APPS}.starlette_app:app"]
    process = subprocess.Popen(args, env=traced_env(receiver, PYTHONPATH=str(REPO)), cwd=REPO, text=True)
    try:
        listening(port, process)
        served = Served("background", "starlette", port, receiver, process)
        trace_id = new_trace_id()
        status, _, body = served.get("/background", [parent_header(trace_id)])
        assert (status, body) == (200, b"accepted")
        spans = served.spans_of(trace_id, 2)
    finally:
        process.terminate()
        process.wait(timeout=15)
    (server,) = [s for s in spans if s.kind == 2]
    (later,) = [s for s in spans if s.name == "load-user"]
    assert server.name == "GET /background"
    assert later.parent_span_id == server.span_id  # still nested under the request ...
    assert server.end_ns <= later.start_ns  # ... which ended when its response had been sent
