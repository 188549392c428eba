"""A misbehaving collector never hurts the app: a real uvicorn app under the CLI, a real receiver that is
down, refuses, hangs, fails or throttles; then comes back and gets everything that was buffered.

Latency under each fault is measured in bench/collector_faults.py (ratios, not timed assertions).
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.e2e.conftest import AUTOTRACE, clean_env, run, stop, warnings_in, write_script
from tests.e2e.test_server_spans import free_port, wait_until_listening
from tests.otlp_receiver import OTLPReceiver

APP = """
import sqlite3

import autotrace
from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

db = sqlite3.connect(":memory:", check_same_thread=False)


def work(request):
    db.execute("SELECT 1").fetchall()
    return PlainTextResponse("ok")


def stats(request):
    return JSONResponse(autotrace.status()["export"]["otlp"])


app = Starlette(routes=[Route("/work", work), Route("/stats", stats)])
"""

REQUESTS = 300


class Client:
    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def get(self, path: str) -> tuple[int, bytes]:
        self.conn.request("GET", path)
        response = self.conn.getresponse()
        return response.status, response.read()

    def stats(self) -> dict[str, int]:
        status, body = self.get("/stats")
        assert status == 200
        result: dict[str, int] = json.loads(body)
        return result


@contextmanager
def app_server(tmp_path: Path, endpoint: str, protocol: str, **extra: str) -> Iterator[tuple[Client, Path]]:
    write_script(tmp_path, "faultapp.py", APP)
    port = free_port()
    env = clean_env(
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
        OTEL_EXPORTER_OTLP_TIMEOUT="1000",
        OTEL_BSP_SCHEDULE_DELAY="100",
        **extra,
    )
    args = [AUTOTRACE, "uvicorn", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    log = tmp_path / "stderr.txt"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [*args, "faultapp:app"],
            env=env,
            cwd=tmp_path,
            stderr=stderr,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        try:
            wait_until_listening(port, process)
            yield Client(port), log
        finally:
            stop(process)


def endpoint_of(receiver: OTLPReceiver, protocol: str) -> str:
    return receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint


def work_spans(receiver: OTLPReceiver) -> set[str]:
    return {s.span_id for s in receiver.spans if s.name == "GET /work"}


FAULTS = [
    ("down", "http/protobuf"),
    ("down", "grpc"),
    ("drop", "http/protobuf"),
    ("slow", "http/protobuf"),
    ("error", "http/protobuf"),
    ("error", "grpc"),
    ("throttle", "http/protobuf"),
]


@pytest.mark.parametrize(("fault", "protocol"), FAULTS)
def test_the_app_is_unaffected_and_everything_arrives_when_the_collector_returns(
    tmp_path: Path, fault: str, protocol: str
) -> None:
    receiver = OTLPReceiver().start()
    endpoint = endpoint_of(receiver, protocol)
    ports = (receiver._http_port, receiver._grpc_port)
    if fault == "down":
        receiver.stop()
    else:
        receiver.set_mode(fault, delay=30 if fault == "slow" else 0.0, retry_after=1)
    try:
        with app_server(tmp_path, endpoint, protocol) as (client, log):
            answers = [client.get("/work") for _ in range(REQUESTS)]
            assert answers == [(200, b"ok")] * REQUESTS  # no request failed, nothing changed
            stats = client.stats()
            assert stats["dropped"] == 0
            assert stats["queued"] >= REQUESTS * 2  # the server span and the query of each, buffered
            if fault == "down":
                receiver = OTLPReceiver(http_port=ports[0], grpc_port=ports[1]).start()
            else:
                receiver.set_mode("ok")
            receiver.wait_for_spans(REQUESTS, timeout=20, predicate=lambda s: s.name == "GET /work")
            assert len(work_spans(receiver)) == REQUESTS  # every one, none twice counted as two
        said = warnings_in(log.read_text())
        assert len(said) == 1, said  # one line for the whole outage, not one per batch
        assert "could not export to" in said[0] and "retrying" in said[0]
    finally:
        receiver.stop()


def test_the_buffer_is_bounded_the_newest_are_kept_and_the_drop_is_said_once(tmp_path: Path) -> None:
    receiver = OTLPReceiver(grpc=False).start()
    receiver.set_mode("error")
    limit = 100 * 1024
    try:
        with app_server(
            tmp_path, receiver.http_endpoint, "http/protobuf", AUTOTRACE_EXPORT_BUFFER_SIZE="100KiB"
        ) as (client, log):
            for round_ in range(4):
                assert [client.get(f"/work?r={round_}")[0] for _ in range(REQUESTS)] == [200] * REQUESTS
            time.sleep(0.3)  # one more encoding round, so the last requests are in the buffer too
            stats = client.stats()
            assert stats["dropped"] > 0
            assert stats["buffered_bytes"] <= limit + 100_000  # the bound, plus the newest body
            receiver.set_mode("ok")
            deadline = time.monotonic() + 20
            while client.stats()["exported"] < stats["queued"] and time.monotonic() < deadline:
                time.sleep(0.2)
            rounds = {s.attributes.get("url.query") for s in receiver.spans if s.name == "GET /work"}
            assert "r=3" in rounds and "r=0" not in rounds  # the oldest went first
        said = warnings_in(log.read_text())
        dropped = [line for line in said if "dropped" in line]
        assert len(dropped) == 1 and "AUTOTRACE_EXPORT_BUFFER_SIZE" in dropped[0], said
    finally:
        receiver.stop()


SCRIPT = """
from opentelemetry import trace
tracer = trace.get_tracer("app")
for i in range(50):
    with tracer.start_as_current_span(f"s{i}"):
        pass
print("done", flush=True)
"""


def test_exit_waits_no_longer_than_the_bound_on_a_hanging_collector(tmp_path: Path) -> None:
    app = write_script(tmp_path, "app.py", SCRIPT)
    with OTLPReceiver(grpc=False) as receiver:
        receiver.set_mode("slow", delay=30)
        env = clean_env(
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.http_endpoint,
            OTEL_BSP_SCHEDULE_DELAY="60000",
            AUTOTRACE_SHUTDOWN_TIMEOUT="30000",
            OTEL_BSP_EXPORT_TIMEOUT="1500",  # the smaller of the two bounds exit
        )
        started = time.monotonic()
        result = run([AUTOTRACE, sys.executable, str(app)], env, timeout=60)
        elapsed = time.monotonic() - started
    assert result.returncode == 0 and result.stdout == "done\n"
    assert elapsed < 12, elapsed  # 1.5 s of waiting plus start-up, far from the 30 s the collector takes
    said = warnings_in(result.stderr)
    assert any("could not export all spans before exit" in line and "50 spans lost" in line for line in said)


def test_a_healthy_collector_gets_every_span_at_exit(tmp_path: Path) -> None:
    # 2000 spans in a tight loop, just under the queue size, all ended right before exit.
    app = write_script(tmp_path, "app.py", SCRIPT.replace("range(50)", "range(2000)"))
    with OTLPReceiver(grpc=False) as receiver:
        env = clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=receiver.http_endpoint, OTEL_BSP_SCHEDULE_DELAY="60000")
        result = run([AUTOTRACE, sys.executable, str(app)], env, timeout=60)
        assert result.returncode == 0, result.stderr
        assert warnings_in(result.stderr) == []
        assert len({s.span_id for s in receiver.spans}) == 2000
