"""Coexistence with another agent, or with a second autotrace: one set of spans and one warning line.

The same app runs in each order through the real launchers (``opentelemetry-instrument``, ``ddtrace-run``,
``autotrace``): a manual span around a sqlite3 query, a urllib request, a requests request and a Redis
command, then a child Python process. Each process prints which agents are active in it.

OpenTelemetry's agent exports to the test receiver too, so its spans are counted there. ddtrace is kept off
the network (its agent URL is a closed loopback port) and exports nothing here: with it, the receiver must
get nothing at all, since autotrace stands down. Only the OpenTelemetry instrumentations for requests and
Redis are installed (no release of those for sqlite3 and urllib matches the SDK), so under
``opentelemetry-instrument`` the sqlite3 query and the urllib request are traced by nobody: autotrace does
not fill the other agent's gaps.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

import pytest

from autotrace.cli import bootstrap_path, launch_environment
from tests.e2e.conftest import BIN, run, traced_env, warnings_in, write_script
from tests.instrumentation.conftest import require_service
from tests.otlp_receiver import OTLPReceiver, ReceivedSpan

pytestmark = pytest.mark.e2e

APP = """
import subprocess
import sys


def agents():
    import autotrace

    found = {
        "autotrace": autotrace.status()["active"],
        "ddtrace": "ddtrace" in sys.modules,
        "opentelemetry-instrument": "opentelemetry.instrumentation.auto_instrumentation" in sys.modules,
    }
    return " ".join(name for name, on in found.items() if on) or "none"


if sys.argv[1] == "child":
    print("child:", agents(), flush=True)
    sys.exit(0)

import sqlite3
import urllib.request

import redis
import requests
from opentelemetry import trace

url = sys.argv[1]
with trace.get_tracer("coexistence-app").start_as_current_span("work"):
    sqlite3.connect(":memory:").execute("SELECT 1").fetchall()
    with urllib.request.urlopen(url + "/by-urllib", timeout=10) as response:
        response.read()
    requests.get(url + "/by-requests", timeout=10).raise_for_status()
    redis.Redis(host="127.0.0.1", port=6379).ping()
subprocess.run([sys.executable, __file__, "child"], check=True)
print("app:", agents())
"""

OPERATIONS = ("work", "sqlite", "urllib", "requests", "redis")
BY_AUTOTRACE = dict.fromkeys(OPERATIONS, 1)
# opentelemetry-instrument here traces requests and Redis only; the app's own span goes to its SDK.
BY_OPENTELEMETRY = {"work": 1, "sqlite": 0, "urllib": 0, "requests": 1, "redis": 1}
NOTHING = dict.fromkeys(OPERATIONS, 0)
CLIENT = 3


@dataclass(frozen=True)
class Order:
    launchers: list[str]
    agent: str  # the one agent active in the app and its child
    spans: dict[str, int]  # spans at the receiver, per operation
    warning: tuple[str, ...] = ()  # what the one warning line says; () for no line at all
    by_hand: bool = False  # autotrace's bootstrap folder on PYTHONPATH before anything runs


OTEL_STANDS = ("opentelemetry-instrument is already active", "autotrace stands down")
DDTRACE_STANDS = ("ddtrace-run is already active", "autotrace stands down")
AUTOTRACE_TWICE = ("autotrace is already active", "not added twice")

ORDERS = {
    "autotrace alone": Order(["autotrace"], "autotrace", BY_AUTOTRACE),
    "opentelemetry-instrument autotrace": Order(
        ["opentelemetry-instrument", "autotrace"], "opentelemetry-instrument", BY_OPENTELEMETRY, OTEL_STANDS
    ),
    "autotrace opentelemetry-instrument": Order(
        ["autotrace", "opentelemetry-instrument"], "opentelemetry-instrument", BY_OPENTELEMETRY, OTEL_STANDS
    ),
    "ddtrace-run autotrace": Order(["ddtrace-run", "autotrace"], "ddtrace", NOTHING, DDTRACE_STANDS),
    "autotrace ddtrace-run": Order(["autotrace", "ddtrace-run"], "ddtrace", NOTHING, DDTRACE_STANDS),
    "autotrace autotrace": Order(["autotrace", "autotrace"], "autotrace", BY_AUTOTRACE, AUTOTRACE_TWICE),
    "autotrace, bootstrap on PYTHONPATH by hand": Order(
        ["autotrace"], "autotrace", BY_AUTOTRACE, AUTOTRACE_TWICE, by_hand=True
    ),
    # ddtrace's sitecustomize chains to ours: our bootstrap stands down in the app, and takes its folder
    # off PYTHONPATH so that the child does not say it again.
    "ddtrace-run, bootstrap on PYTHONPATH by hand": Order(
        ["ddtrace-run"], "ddtrace", NOTHING, ("ddtrace-run is already active in this process",), by_hand=True
    ),
    # OpenTelemetry's sitecustomize shadows ours and does not chain to it: no autotrace code runs at all,
    # so there is nobody to say anything (see docs/troubleshooting.md).
    "opentelemetry-instrument, bootstrap on PYTHONPATH by hand": Order(
        ["opentelemetry-instrument"], "opentelemetry-instrument", BY_OPENTELEMETRY, by_hand=True
    ),
}


@pytest.fixture(scope="module")
def closed_port() -> int:
    """A loopback port nothing listens on: ddtrace's agent URL, so that it stays off the network."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.parametrize("order", list(ORDERS.values()), ids=list(ORDERS))
def test_one_set_of_spans_and_one_line(
    tmp_path: Path, receiver: OTLPReceiver, echo: str, closed_port: int, order: Order
) -> None:
    require_service("Redis", 6379)
    app = write_script(tmp_path, "app.py", APP)
    env = _environment(receiver, closed_port, order)
    command = [str(BIN / order.launchers[0]), *order.launchers[1:], "python", str(app), echo]

    result = run(command, env, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"child: {order.agent}", f"app: {order.agent}"]
    said = warnings_in(result.stderr)
    assert len(said) == (1 if order.warning else 0), result.stderr
    for words in order.warning:
        assert words in said[0]
    spans = _spans_after_exit(receiver, order)
    assert _count(spans) == order.spans, [(s.scope, s.name) for s in spans]
    libraries = {s.scope for s in spans if s.kind == CLIENT}
    assert all(scope.startswith("autotrace") == (order.agent == "autotrace") for scope in libraries)
    assert len({s.trace_id for s in spans}) <= 1  # the app's span and the libraries' share one SDK


CONFIGURE = """
import importlib
import sys

importlib.import_module(sys.argv[1])
import autotrace

autotrace.configure()
print(autotrace.status()["active"])
"""


@pytest.mark.parametrize(
    ("module", "active", "lines"),
    [("ddtrace", True, 0), ("ddtrace.auto", False, 1)],
    ids=["import ddtrace: a library, nothing set up", "import ddtrace.auto: ddtrace traces"],
)
def test_configure_stands_down_for_ddtrace_only_when_it_is_set_up(
    tmp_path: Path, receiver: OTLPReceiver, closed_port: int, module: str, active: bool, lines: int
) -> None:
    app = write_script(tmp_path, "app.py", CONFIGURE)
    env = _environment(receiver, closed_port, ORDERS["autotrace alone"])

    result = run([str(BIN / "python"), str(app), module], env)

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{active}\n"
    said = warnings_in(result.stderr)
    assert len(said) == lines, result.stderr
    assert all("ddtrace is already active in this process; autotrace stands down" in line for line in said)


OTEL_FOLDER = os.path.join("/site", "opentelemetry", "instrumentation", "auto_instrumentation") + "/"
ANOTHER_INSTALL = os.path.join("/other", "site-packages", "autotrace", "_bootstrap") + "/"


@pytest.mark.parametrize(
    ("program", "given", "handed_on"),
    [
        ("/usr/bin/python3", ["/keep", "OURS"], ["OURS", "/keep"]),  # first, and only once
        ("/venv/bin/ddtrace-run", ["OURS", "/keep"], ["/keep"]),
        ("opentelemetry-instrument.exe", ["OURS"], None),
        ("python", [OTEL_FOLDER, "OURS"], [OTEL_FOLDER]),
        ("autotrace", [ANOTHER_INSTALL], None),  # the inner launcher puts its own folder back
    ],
)
def test_the_launcher_hands_on_its_folder_only_when_nobody_else_sets_the_command_up(
    program: str, given: list[str], handed_on: list[str] | None
) -> None:
    ours = bootstrap_path()
    pythonpath = os.pathsep.join(ours if p == "OURS" else p for p in given)
    env = launch_environment({"PYTHONPATH": pythonpath}, {"OTEL_SERVICE_NAME": "x"}, program)
    expected = None if handed_on is None else os.pathsep.join(ours if p == "OURS" else p for p in handed_on)
    assert env.get("PYTHONPATH") == expected
    assert env["OTEL_SERVICE_NAME"] == "x"


def _environment(receiver: OTLPReceiver, closed_port: int, order: Order) -> dict[str, str]:
    env = traced_env(
        receiver,
        # opentelemetry-instrument sends metrics and logs by default; the receiver takes traces only.
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        DD_TRACE_AGENT_URL=f"http://127.0.0.1:{closed_port}",
        DD_INSTRUMENTATION_TELEMETRY_ENABLED="false",
        DD_REMOTE_CONFIGURATION_ENABLED="false",
        DD_CRASHTRACKING_ENABLED="false",
    )
    if order.by_hand:
        env["PYTHONPATH"] = run([str(BIN / "autotrace"), "bootstrap-path"], env).stdout.strip()
    return env


def _spans_after_exit(receiver: OTLPReceiver, order: Order) -> list[ReceivedSpan]:
    """Every span the run sent. Both SDKs flush at exit before the process ends, so once it has ended
    nothing more comes: waiting for the expected number and then taking all is exact."""
    expected = sum(order.spans.values())
    return receiver.wait_for_spans(expected) if expected else receiver.spans


def _count(spans: list[ReceivedSpan]) -> dict[str, int]:
    counts = dict.fromkeys(OPERATIONS, 0)
    for span in spans:
        counts[_operation(span)] += 1
    return counts


def _operation(span: ReceivedSpan) -> str:
    if span.name == "work":
        return "work"
    system = span.attributes.get("db.system.name", span.attributes.get("db.system"))
    if system in ("sqlite", "redis"):
        return str(system)
    for path in ("urllib", "requests"):
        if any(str(value).endswith(f"/by-{path}") for value in span.attributes.values()):
            return path
    raise AssertionError(f"a span for no operation of the app: {span}")
