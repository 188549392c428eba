"""The trace context follows work into every concurrency mechanism, through the real CLI.

Each child is a sqlite3 query (a CLIENT span autotrace makes) named by a column alias, so every
mechanism can be told apart in what the OTLP receiver got. Inside the outer span each child must have
the outer span as parent, in the same trace; work started outside any span must start its own trace.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import AUTOTRACE, clean_env, run, stop, traced_env, write_script
from tests.e2e.test_server_spans import free_port, new_trace_id, parent_header, wait_until_listening
from tests.otlp_receiver import OTLPReceiver, ReceivedSpan

SERVER = 2
REMOTE_PARENT = "b7ad6b7169203331"
DETACH_FAILED = "Failed to detach context"

MATRIX_APP = """
import asyncio, json, multiprocessing, sqlite3, sys, threading
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from opentelemetry import baggage, context, trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

tracer = trace.get_tracer("app")


def work(label):
    sqlite3.connect(":memory:").execute(f"SELECT 1 AS {label}").fetchall()
    return baggage.get_baggage("tenant")


def rows(prefix):
    for i in range(2):
        yield work(f"{prefix}_{i}")


async def arows(prefix):
    for i in range(2):
        yield work(f"{prefix}_{i}")
        await asyncio.sleep(0)


async def awork(label):
    await asyncio.sleep(0)
    return work(label)


async def consume(agen):
    return [item async for item in agen]


async def in_asyncio(process_pool):
    loop = asyncio.get_running_loop()
    await asyncio.create_task(awork("create_task"))
    await asyncio.gather(awork("gather_a"), awork("gather_b"))
    async with asyncio.TaskGroup() as group:
        group.create_task(awork("task_group"))
    await loop.run_in_executor(None, work, "executor_default")
    with ThreadPoolExecutor(1) as mine:
        await loop.run_in_executor(mine, work, "executor_thread_pool")
    seen = await loop.run_in_executor(process_pool, work, "executor_process_pool")
    await asyncio.create_task(consume(arows("async_generator")))
    return seen


def pool(method):
    return ProcessPoolExecutor(1, mp_context=multiprocessing.get_context(method))


def thread(label):
    t = threading.Thread(target=work, args=(label,))
    t.start()
    t.join()


def main():
    seen = {}
    threads = ThreadPoolExecutor(1)  # its worker thread is started inside the span below
    warm = {method: pool(method) for method in ("fork", "spawn")}
    for p in warm.values():  # workers started outside any span: they have nothing to inherit
        p.submit(len, "").result()
    cold_fork = pool("fork")  # forked inside the span, used again outside it
    remote = TraceContextTextMapPropagator().extract(
        {"traceparent": f"00-{sys.argv[1]}-REMOTE_PARENT-01", "tracestate": "vendor=x"}
    )
    with tracer.start_as_current_span("outer", context=remote):
        token = context.attach(baggage.set_baggage("tenant", "acme"))
        thread("thread")
        threads.submit(work, "thread_pool_submit").result()
        list(threads.map(work, ["thread_pool_map"]))
        for method, p in warm.items():
            seen[f"{method}_submit"] = p.submit(work, f"{method}_submit").result()
            seen[f"{method}_map"] = list(p.map(work, [f"{method}_map"]))[0]
        seen["fork_cold"] = cold_fork.submit(work, "fork_cold").result()
        threads.submit(list, rows("generator")).result()
        seen["executor_process_pool"] = asyncio.run(in_asyncio(warm["spawn"]))
        context.detach(token)
    thread("outside_thread")
    threads.submit(work, "outside_thread_pool").result()
    seen["outside_fork"] = cold_fork.submit(work, "outside_fork").result()
    seen["outside_spawn"] = warm["spawn"].submit(work, "outside_spawn").result()
    for p in (threads, cold_fork, *warm.values()):
        p.shutdown()
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
""".replace("REMOTE_PARENT", REMOTE_PARENT)

INSIDE = [
    "thread",
    "thread_pool_submit",
    "thread_pool_map",
    "fork_submit",
    "fork_map",
    "spawn_submit",
    "spawn_map",
    "fork_cold",
    "generator_0",
    "generator_1",
    "create_task",
    "gather_a",
    "gather_b",
    "task_group",
    "executor_default",
    "executor_thread_pool",
    "executor_process_pool",
    "async_generator_0",
    "async_generator_1",
]
OUTSIDE = ["outside_thread", "outside_thread_pool", "outside_fork", "outside_spawn"]
IN_OTHER_PROCESSES = [label for label in INSIDE if label.startswith(("fork", "spawn", "executor_process"))]


def by_label(spans: list[ReceivedSpan]) -> dict[str, ReceivedSpan]:
    """The sqlite3 spans, by the column alias of their query (``SELECT ? AS label``)."""
    found = {}
    for span in spans:
        match = re.fullmatch(r"SELECT \? AS (\w+)", str(span.attributes.get("db.query.text", "")))
        if match:
            found[match.group(1)] = span
    return found


def clean_stderr(stderr: str) -> list[str]:
    """Lines that must never appear: a context detached in the wrong place, our warnings or errors."""
    bad = (DETACH_FAILED, "autotrace: WARNING", "autotrace: ERROR")
    return [line for line in stderr.splitlines() if line.startswith(bad) or DETACH_FAILED in line]


def test_every_mechanism_continues_the_trace_it_was_started_from(
    tmp_path: Path, receiver: OTLPReceiver
) -> None:
    app = write_script(tmp_path, "app.py", MATRIX_APP)
    trace_id = new_trace_id()
    result = run([AUTOTRACE, "python", str(app), trace_id], traced_env(receiver), timeout=120)
    assert result.returncode == 0, result.stderr
    assert clean_stderr(result.stderr) == [], result.stderr

    spans = receiver.wait_for_spans(1 + len(INSIDE) + len(OUTSIDE), timeout=30)
    (outer,) = [s for s in spans if s.name == "outer"]
    assert (outer.trace_id, outer.parent_span_id) == (trace_id, REMOTE_PARENT)
    children = by_label(spans)
    assert sorted(children) == sorted(INSIDE + OUTSIDE)
    wrong = {
        label: (children[label].parent_span_id, children[label].trace_id)
        for label in INSIDE
        if (children[label].parent_span_id, children[label].trace_id) != (outer.span_id, trace_id)
    }
    assert wrong == {}, f"outer span is {outer.span_id}"
    false_parents = {label: children[label].parent_span_id for label in OUTSIDE}
    assert false_parents == dict.fromkeys(OUTSIDE, "")
    assert trace_id not in {children[label].trace_id for label in OUTSIDE}

    # Into another process go the tracestate and the baggage too, and nothing stays behind there.
    assert {children[label].trace_state for label in IN_OTHER_PROCESSES} == {"vendor=x"}
    seen = json.loads(result.stdout)
    assert {label: seen[label] for label in IN_OTHER_PROCESSES} == dict.fromkeys(IN_OTHER_PROCESSES, "acme")
    assert (seen["outside_fork"], seen["outside_spawn"]) == (None, None)


POOL_ERRORS_APP = """
import json, multiprocessing, os, re, sys
from concurrent.futures import ProcessPoolExecutor
from opentelemetry import trace

tracer = trace.get_tracer("app")


def add(a, b):
    return a + b


def agent_here():
    bootstrap = sys.modules.get("autotrace.bootstrap")
    return bootstrap is not None and bootstrap.agent() is not None


def outcome(call):
    try:
        return ["ok", call()]
    except Exception as exc:
        return [type(exc).__module__ + "." + type(exc).__qualname__, re.sub(" at 0x[0-9a-f]+", "", str(exc))]


def main():
    out = {}
    for method in ("fork", "spawn"):
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context(method)) as pool:
            with tracer.start_as_current_span("calls"):
                out[method] = [
                    outcome(lambda: pool.submit(add, 1, 2).result()),
                    outcome(lambda: list(pool.map(add, [1, 2], [3, 4]))),
                    outcome(lambda: pool.submit(lambda: 1).result()),
                    outcome(lambda: list(pool.map(lambda x: x, [1]))),
                    outcome(lambda: pool.submit(add, 1, "x").result()),
                    outcome(lambda: pool.submit(42).result()),
                    outcome(lambda: pool.submit(add, 1, b=lambda: 2).result()),
                ]
    # A worker in which tracing is off just makes the call.
    os.environ["OTEL_SDK_DISABLED"] = "true"
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        with tracer.start_as_current_span("calls"):
            out["untraced worker"] = [pool.submit(agent_here).result(), pool.submit(add, 2, 2).result()]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
"""


def test_process_pool_calls_and_their_errors_are_exactly_as_without_autotrace(
    tmp_path: Path, receiver: OTLPReceiver
) -> None:
    app = write_script(tmp_path, "app.py", POOL_ERRORS_APP)
    plain = run(["python", str(app)], clean_env(), timeout=120)
    traced = run([AUTOTRACE, "python", str(app)], traced_env(receiver), timeout=120)
    assert plain.returncode == 0 and traced.returncode == 0, (plain.stderr, traced.stderr)
    assert clean_stderr(traced.stderr) == [], traced.stderr
    assert json.loads(traced.stdout) == json.loads(plain.stdout)
    out = json.loads(traced.stdout)
    assert out["fork"][2][1].startswith("Can't pickle local object")  # the user's own error
    assert out["untraced worker"] == [False, 4]
    receiver.wait_for_spans(3, predicate=lambda s: s.name == "calls")


# --------------------------------------------------------------------------- servers

STARLETTE_APP = """
import asyncio, sqlite3
from starlette.applications import Starlette
from starlette.responses import StreamingResponse
from starlette.routing import Route


def query(label):
    sqlite3.connect(":memory:").execute(f"SELECT 1 AS {label}").fetchall()
    return f"{label}\\n".encode()


def chunks():
    for i in range(3):
        yield query(f"sync_chunk_{i}")


async def achunks():
    for i in range(3):
        yield query(f"async_chunk_{i}")
        await asyncio.sleep(0)


app = Starlette(
    routes=[
        Route("/sync", lambda request: StreamingResponse(chunks())),
        Route("/async", lambda request: StreamingResponse(achunks())),
    ]
)
"""

FLASK_APP = """
import sqlite3
from flask import Flask, Response, stream_with_context

app = Flask(__name__)


def query(label):
    sqlite3.connect(":memory:").execute(f"SELECT 1 AS {label}").fetchall()
    return f"{label}\\n"


@app.route("/plain")
def plain():
    return Response(query(f"plain_chunk_{i}") for i in range(3))


@app.route("/with-context")
def with_context():
    return Response(stream_with_context(query(f"ctx_chunk_{i}") for i in range(3)))
"""

GEVENT_APP = """
import sqlite3, threading
import gevent
from gevent.pool import Pool
from flask import Flask

app = Flask(__name__)


def query(label):
    sqlite3.connect(":memory:").execute(f"SELECT 1 AS {label}").fetchall()
    return label


@app.route("/<tag>")
def index(tag):
    gevent.spawn(query, f"{tag}_spawn").join()
    greenlet = gevent.Greenlet(query, f"{tag}_greenlet")
    greenlet.start()
    greenlet.join()
    Pool(2).map(query, [f"{tag}_pool_map"])
    gevent.joinall([gevent.spawn_later(0, query, f"{tag}_spawn_later")])
    gevent.spawn(lambda: gevent.spawn(query, f"{tag}_nested").join()).join()
    thread = threading.Thread(target=query, args=(f"{tag}_thread",))
    thread.start()
    thread.join()
    return "ok"
"""
GEVENT_CHILDREN = ["spawn", "greenlet", "pool_map", "spawn_later", "nested", "thread"]


@contextlib.contextmanager
def serving(command: list[str], env: dict[str, str], cwd: Path, log: Path) -> Iterator[int]:
    """Run ``autotrace <command>`` (``{port}`` filled in) until the block ends; stderr goes to ``log``."""
    port = free_port()
    args = [AUTOTRACE, *(part.format(port=port) for part in command)]
    with log.open("w") as stderr:
        out = subprocess.DEVNULL
        process = subprocess.Popen(args, env=env, cwd=cwd, stderr=stderr, stdout=out, text=True)
        try:
            wait_until_listening(port, process)
            yield port
        finally:
            stop(process)


def get(port: int, path: str, trace_id: str) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers=dict([parent_header(trace_id)]))
        response = conn.getresponse()
        assert response.status == 200
        return response.read()
    finally:
        conn.close()


def children_of_one_server_span(receiver: OTLPReceiver, trace_id: str, labels: list[str]) -> None:
    spans = receiver.wait_for_spans(1 + len(labels), timeout=20, predicate=lambda s: s.trace_id == trace_id)
    (server,) = [s for s in spans if s.kind == SERVER]
    children = by_label(spans)
    assert sorted(children) == sorted(labels)
    parents = {label: children[label].parent_span_id for label in labels}
    assert parents == dict.fromkeys(labels, server.span_id)


STREAMING = {
    "starlette-uvicorn": (
        STARLETTE_APP,
        ["uvicorn", "--host", "127.0.0.1", "--port", "{port}", "--log-level", "warning", "app:app"],
        {"/sync": "sync_chunk", "/async": "async_chunk"},
    ),
    "flask-gunicorn": (
        FLASK_APP,
        ["gunicorn", "-b", "127.0.0.1:{port}", "app:app"],
        {"/plain": "plain_chunk", "/with-context": "ctx_chunk"},
    ),
}


@pytest.mark.parametrize("name", sorted(STREAMING))
def test_streamed_chunks_are_children_of_the_server_span(
    name: str, tmp_path: Path, receiver: OTLPReceiver
) -> None:
    source, command, routes = STREAMING[name]
    write_script(tmp_path, "app.py", source)
    log = tmp_path / "stderr.txt"
    with serving(command, traced_env(receiver, OTEL_BSP_SCHEDULE_DELAY="100"), tmp_path, log) as port:
        for path, prefix in routes.items():
            trace_id = new_trace_id()
            labels = [f"{prefix}_{i}" for i in range(3)]
            assert get(port, path, trace_id) == "".join(f"{label}\n" for label in labels).encode()
            children_of_one_server_span(receiver, trace_id, labels)
    assert clean_stderr(log.read_text()) == [], log.read_text()


def test_gevent_worker_greenlets_continue_the_request_trace(tmp_path: Path, receiver: OTLPReceiver) -> None:
    write_script(tmp_path, "app.py", GEVENT_APP)
    log = tmp_path / "stderr.txt"
    command = ["gunicorn", "-k", "gevent", "-b", "127.0.0.1:{port}", "app:app"]
    with serving(command, traced_env(receiver, OTEL_BSP_SCHEDULE_DELAY="100"), tmp_path, log) as port:
        for tag in ("first", "second"):  # the second request gets nothing of the first's context
            trace_id = new_trace_id()
            assert get(port, f"/{tag}", trace_id) == b"ok"
            children_of_one_server_span(receiver, trace_id, [f"{tag}_{child}" for child in GEVENT_CHILDREN])
    assert clean_stderr(log.read_text()) == [], log.read_text()
