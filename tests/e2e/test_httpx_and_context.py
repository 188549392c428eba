"""httpx (sync and async) CLIENT spans, and context carried into threads, pools and tasks."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.conftest import AUTOTRACE, run, traced_env, warnings_in, write_script
from tests.e2e.test_http_client import CLIENT, ERROR
from tests.otlp_receiver import OTLPReceiver

HTTPX_APP = """
import asyncio, json, sys, httpx
from opentelemetry import trace

base = sys.argv[1]
tracer = trace.get_tracer("app")
out = {}
with tracer.start_as_current_span("sync-work"):
    with httpx.Client() as client:
        request = client.build_request("GET", base + "/redirect", headers={"x-mine": "1"})
        response = client.send(request, follow_redirects=True)
        out["sync"] = response.json()
        out["caller_headers_after"] = sorted(request.headers.keys())
        out["status500"] = client.get(base + "/status/500").status_code
    try:
        httpx.get("http://127.0.0.1:1/refused")
    except httpx.ConnectError as e:
        out["refused"] = type(e).__name__


async def main():
    async with httpx.AsyncClient() as client:
        with tracer.start_as_current_span("async-work"):
            a, b = await asyncio.gather(client.get(base + "/a"), client.get(base + "/b"))
            out["async"] = [a.json()["traceparent"], b.json()["traceparent"]]

asyncio.run(main())
print(json.dumps(out))
"""


def test_httpx_sync_and_async(tmp_path: Path, receiver: OTLPReceiver, echo: str) -> None:
    app = write_script(tmp_path, "app.py", HTTPX_APP)
    result = run([AUTOTRACE, "python", str(app), echo], traced_env(receiver))
    assert result.returncode == 0, result.stderr
    assert warnings_in(result.stderr) == []
    out = json.loads(result.stdout)
    assert out["caller_headers_after"] == sorted(
        ["host", "accept", "accept-encoding", "connection", "user-agent", "x-mine"]
    )
    assert out["status500"] == 500 and out["refused"] == "ConnectError"

    spans = receiver.wait_for_spans(8)
    by_name = {s.name: s for s in spans if s.kind != CLIENT}
    sync_work, async_work = by_name["sync-work"], by_name["async-work"]
    clients = sorted((s for s in spans if s.kind == CLIENT), key=lambda s: s.start_ns)
    assert len(clients) == 6, [c.attributes.get("url.full") for c in clients]
    hop1, hop2, failed, refused, *parallel = clients
    assert [c.parent_span_id for c in (hop1, hop2, failed, refused)] == [sync_work.span_id] * 4
    assert hop1.attributes["http.response.status_code"] == 302
    assert hop2.attributes["http.request.resend_count"] == 1
    assert out["sync"]["traceparent"].split("-")[1:3] == [sync_work.trace_id, hop2.span_id]
    assert hop2.attributes["network.protocol.version"] == "1.0"  # the echo server answers in HTTP/1.0
    assert failed.status_code == ERROR and failed.attributes["error.type"] == "500"
    assert refused.status_code == ERROR and refused.attributes["error.type"] == "httpx.ConnectError"
    assert {c.parent_span_id for c in parallel} == {async_work.span_id}
    sent_parents = {tp.split("-")[2] for tp in out["async"]}
    assert sent_parents == {c.span_id for c in parallel}  # each concurrent call names its own span


CONTEXT_APP = """
import asyncio, threading
from concurrent.futures import ThreadPoolExecutor
from opentelemetry import trace

tracer = trace.get_tracer("app")

def work(name):
    with tracer.start_as_current_span(name):
        pass

with tracer.start_as_current_span("request"):
    t = threading.Thread(target=work, args=("in-thread",))
    t.start(); t.join()
    with ThreadPoolExecutor(2) as pool:
        pool.submit(work, "in-pool").result()

    async def main():
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, work, "in-executor")
        await asyncio.gather(asyncio.to_thread(work, "in-to-thread"), asyncio.sleep(0))

    asyncio.run(main())

with ThreadPoolExecutor(1) as pool:  # outside any span: a new trace, not the last one
    pool.submit(work, "outside").result()
"""


def test_context_follows_work_into_threads_pools_and_executors(
    tmp_path: Path, receiver: OTLPReceiver
) -> None:
    app = write_script(tmp_path, "app.py", CONTEXT_APP)
    result = run([AUTOTRACE, "python", str(app)], traced_env(receiver))
    assert result.returncode == 0, result.stderr
    spans = {s.name: s for s in receiver.wait_for_spans(6)}
    request = spans["request"]
    for name in ("in-thread", "in-pool", "in-executor", "in-to-thread"):
        assert spans[name].parent_span_id == request.span_id, name
        assert spans[name].trace_id == request.trace_id
    assert spans["outside"].parent_span_id == "" and spans["outside"].trace_id != request.trace_id


AIOHTTP_APP = """
import asyncio, json, sys, aiohttp
from opentelemetry import trace

base = sys.argv[1]
tracer = trace.get_tracer("app")


async def main():
    out = {}
    mine = {"x-mine": "1"}
    async with aiohttp.ClientSession() as session:
        with tracer.start_as_current_span("work"):
            async with session.get(base + "/redirect", headers=mine) as r:
                out["sent"] = await r.json()
            async with session.get(base + "/status/503") as r:
                out["status"] = r.status
            try:
                async with session.get("http://127.0.0.1:1/refused") as r:
                    pass
            except aiohttp.ClientConnectorError as e:
                out["refused"] = type(e).__name__
    out["mine_after"] = mine
    print(json.dumps(out))

asyncio.run(main())
"""


def test_aiohttp_client_spans(tmp_path: Path, receiver: OTLPReceiver, echo: str) -> None:
    app = write_script(tmp_path, "app.py", AIOHTTP_APP)
    result = run([AUTOTRACE, "python", str(app), echo], traced_env(receiver))
    assert result.returncode == 0, result.stderr
    assert warnings_in(result.stderr) == []
    out = json.loads(result.stdout)
    assert out["mine_after"] == {"x-mine": "1"} and out["status"] == 503
    assert out["refused"] == "ClientConnectorError"
    spans = receiver.wait_for_spans(5)
    (work,) = [s for s in spans if s.name == "work"]
    clients = sorted((s for s in spans if s.kind == CLIENT), key=lambda s: s.start_ns)
    assert len(clients) == 4, [c.attributes.get("url.full") for c in clients]
    hop1, hop2, unavailable, refused = clients
    assert {c.parent_span_id for c in clients} == {work.span_id}
    assert hop1.attributes["http.response.status_code"] == 302
    assert hop2.attributes["http.request.resend_count"] == 1
    assert out["sent"]["traceparent"].split("-")[1:3] == [work.trace_id, hop2.span_id]
    assert out["sent"]["x-mine"] == "1"
    assert unavailable.status_code == ERROR and unavailable.attributes["error.type"] == "503"
    assert refused.status_code == ERROR
    assert refused.attributes["error.type"] == "aiohttp.client_exceptions.ClientConnectorError"
    assert [name for name, _ in refused.events] == ["exception"]
