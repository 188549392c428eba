"""Hostile requests on the wire: a traced server answers them exactly as the same server untraced.

For each stack (uvicorn + Starlette, gunicorn + Flask) the same app is started twice, under the real
``autotrace`` CLI and without it, and the same ~200 seeded raw requests are written to both over a
socket: garbage and lower-case methods, non-UTF-8 paths, invalid percent-encoding, broken and huge
``traceparent``, 200 ``tracestate`` members, 1000 ``baggage`` members, 16 KiB header values, odd header
bytes. The status line (or how the connection ended) must be the same for each request, traced or not,
and the traced server's stderr must hold no internal error. The apps call a loopback echo on
``/forward``: every trace header the traced app sends onward must be valid, and every attribute of
every span received within the 8192-character default limit.

``hostile_requests`` is also the generator of the longer run by hand, bench/fuzz_wire.py.
"""

from __future__ import annotations

import contextlib
import random
import re
import socket
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

import pytest

from tests.e2e.conftest import AUTOTRACE, clean_env, stop, traced_env, write_script
from tests.e2e.test_server_spans import free_port, wait_until_listening
from tests.otlp_receiver import OTLPReceiver, ReceivedSpan
from tests.unit.test_hostile_input import check_outgoing, check_traceparent

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SEED = 20240606
COUNT = 200
VALUE_LIMIT = 8192  # the default OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT (docs/limits.md)
CLIENT = 3
FORWARDED = ("traceparent", "tracestate", "baggage", "b3", "uber-trace-id")

# ============================================================================ the hostile requests

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
VALID_PARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"
TOKEN_CHARS = "!#$%&'*+-.^_`|~" + "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
# Bytes that keep a request framed: no CR or LF (they would end the line).
ODD_BYTES = bytes(b for b in range(256) if b not in b"\r\n")
# What servers accept in a field value (RFC 9110: VCHAR, obs-text, inner SP and HTAB): odd enough for
# us, and the request reaches the app.
VALUE_BYTES = bytes([0x09, *range(0x21, 0x7F), *range(0x80, 0x100)])


@dataclass
class RawRequest:
    """One request before it is written: each part may be anything the generator chose."""

    method: bytes = b"GET"
    target: bytes = b"/forward"
    version: bytes = b"HTTP/1.1"
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    trace_id: str | None = None  # set on the valid requests: the trace the app must continue

    def encode(self) -> bytes:
        lines = [b" ".join((self.method, self.target, self.version))]
        lines += [name + b": " + value for name, value in self.headers]
        # Every request is complete and asks for the connection to close: no server waits for more.
        return b"\r\n".join([*lines, b"Connection: close", b"", b""])


def _odd(rng: random.Random, size: int, alphabet: bytes = ODD_BYTES) -> bytes:
    return bytes(rng.choice(alphabet) for _ in range(size))


def _hex(rng: random.Random, size: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(size))


def _token(rng: random.Random, size: int) -> str:
    return "".join(rng.choice(TOKEN_CHARS) for _ in range(size))


def _method(rng: random.Random, r: RawRequest) -> None:
    r.method = rng.choice(
        [
            b"get",
            b"Get",
            b"PROPFIND",
            b"QUERY",
            b"_OTHER",
            b"HTTP",
            _token(rng, rng.randint(1, 12)).encode(),
            _odd(rng, rng.randint(1, 12), bytes(b for b in ODD_BYTES if b != 0x20)),
            b"G\x00T",
            b"\xc3\xa9T",
            b"A" * 1000,
            b"",
        ]
    )


def _path(rng: random.Random, r: RawRequest) -> None:
    no_space = bytes(b for b in ODD_BYTES if b not in b" #?")
    r.target = rng.choice(
        [
            b"/forward/" + _odd(rng, rng.randint(1, 40), no_space),
            b"/forward/\xff\xfe\xc3\x28",
            b"/forward/%ff%fe",
            b"/forward/%c3%28/%ed%a0%80",
            b"/forward/%zz/%/%0",
            b"/forward/%00",
            b"/items/" + _odd(rng, rng.randint(1, 20), no_space),
            b"/items/%E2%9C%93",
            b"/forward?" + _odd(rng, rng.randint(1, 40), bytes(b for b in ODD_BYTES if b != 0x20)),
            b"/forward?token=secret&q=%ff&x=%zz",
            b"/forward/" + b"a" * 8000,
            b"//forward",
            b"*",
            b"http://example.com/forward",
            b"/forward#frag",
        ]
    )


def _version(rng: random.Random, r: RawRequest) -> None:
    r.version = rng.choice([b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.1x", b"FOO", b"HTTP/9.9"])


def _traceparent(rng: random.Random, r: RawRequest) -> None:
    chars = list(VALID_PARENT)
    chars[rng.randrange(len(chars))] = rng.choice("0f-zZ\t\xff ,")
    value = rng.choice(
        [
            "".join(chars),
            VALID_PARENT.upper(),
            f"ff-{TRACE_ID}-b7ad6b7169203331-01",
            f"00-{'0' * 32}-b7ad6b7169203331-01",
            f"00-{TRACE_ID}-{'0' * 16}-01",
            VALID_PARENT + "-extra",
            f"cc-{TRACE_ID}-b7ad6b7169203331-01-future",
            VALID_PARENT + "," + VALID_PARENT,
            "00-" + "a" * 16384,
            f"00-{_hex(rng, 32)}-{_hex(rng, 16)}-{_hex(rng, 2)}",
        ]
    ).encode("latin-1")
    r.headers.append((b"traceparent", value))
    if rng.random() < 0.2:
        r.headers.append((b"traceparent", VALID_PARENT.encode()))  # a second field: invalid


def _valid_parent(rng: random.Random, r: RawRequest) -> str:
    trace_id = _hex(rng, 31) + "1"
    r.headers.append((b"traceparent", f"00-{trace_id}-{_hex(rng, 15)}1-01".encode()))
    return trace_id


def _tracestate(rng: random.Random, r: RawRequest) -> None:
    if not any(name == b"traceparent" for name, _ in r.headers):
        _valid_parent(rng, r)
    count = rng.choice([3, 32, 33, 200])
    members = [
        f"k{i}={_token(rng, rng.randint(1, 20)).replace(',', '').replace('=', '')}" for i in range(count)
    ]
    if rng.random() < 0.3:
        members[rng.randrange(count)] = _odd(rng, 10, VALUE_BYTES).decode("latin-1")
    value = rng.choice([",".join(members), "k=" + "v" * 16384, " , ,".join(members[:5])])
    r.headers.append((b"tracestate", value.encode("latin-1")))


def _baggage(rng: random.Random, r: RawRequest) -> None:
    count = rng.choice([1, 64, 65, 1000])
    members = [f"k{i}=v{i}" for i in range(count)]
    if rng.random() < 0.5:
        members[rng.randrange(count)] = rng.choice(["bad key=1", "k=%zz", "k=%ff%fe", "k=\xe9", "=v", "k"])
    value = rng.choice([",".join(members), "k=" + "v" * 16384, "k=%E2%9C%93;prop=1, j = x ;p"])
    r.headers.append((b"baggage", value.encode("latin-1")))


def _other_propagators(rng: random.Random, r: RawRequest) -> None:
    r.headers += [
        (b"b3", rng.choice([f"{_hex(rng, 32)}-{_hex(rng, 16)}-1", "0", "x" * 9000, "--"]).encode()),
        (b"x-b3-traceid", _hex(rng, rng.choice([15, 16, 32, 33])).encode()),
        (b"x-b3-spanid", _odd(rng, 16, VALUE_BYTES)),
        (
            b"uber-trace-id",
            rng.choice([f"{_hex(rng, 32)}%3A{_hex(rng, 16)}:0:1", "1:1:0:1", "::::"]).encode(),
        ),
        (b"uberctx-" + _token(rng, 5).encode(), _odd(rng, 20, VALUE_BYTES)),
        (b"Uberctx-", b"v"),
    ]


def _huge_value(rng: random.Random, r: RawRequest) -> None:
    name = rng.choice([b"user-agent", b"x-junk", b"x-forwarded-for", b"tracestate", b"cookie"])
    r.headers.append((name, b"v" * rng.choice([4000, 8000, 9000, 16384])))


def _many_headers(rng: random.Random, r: RawRequest) -> None:
    r.headers += [(b"x-h%d" % i, _token(rng, 8).encode()) for i in range(rng.choice([50, 100, 300]))]


def _odd_headers(rng: random.Random, r: RawRequest) -> None:
    no_colon = bytes(b for b in ODD_BYTES if b != ord(":"))
    r.headers += [
        (rng.choice([b"x-\xff", b"bad name", b"x(y)", b"", _odd(rng, 6, no_colon)]), _odd(rng, 10)),
        (b"user-agent", rng.choice([b"\x00\x01\x7f", b"\xc3\x28\xff", _odd(rng, 30)])),
        (b"x-forwarded-for", rng.choice([b"\xff, 1.2.3.4", b", ,", _odd(rng, 12)])),
    ]


def _host(rng: random.Random, r: RawRequest) -> None:
    values = [
        b"a:\xb2",
        b"[::1]:\xb9",
        b"[::1",
        b"h:99999",
        b":80",
        b"",
        _odd(rng, 12, VALUE_BYTES),
        _odd(rng, 12),
    ]
    r.headers = [(b"Host", rng.choice(values)), *r.headers[1:]]  # in place of the one Host allowed


# Request line and framing: most of these make the server itself refuse the request.
WIRE_MUTATIONS: list[Callable[[random.Random, RawRequest], None]] = [
    _method,
    _path,
    _version,
    _odd_headers,
    _host,
]
# Header values a server accepts: the request reaches the app, through the agent.
HEADER_MUTATIONS: list[Callable[[random.Random, RawRequest], None]] = [
    _traceparent,
    _tracestate,
    _baggage,
    _other_propagators,
    _huge_value,
    _many_headers,
]
MUTATIONS = WIRE_MUTATIONS + HEADER_MUTATIONS


def hostile_requests(seed: int, count: int) -> Iterator[RawRequest]:
    """``count`` requests, the same ones for the same seed.

    Each request gets one mutation, every one in turn, and up to two more header mutations; one in ten
    is valid, with a trace context the app must continue.
    """
    rng = random.Random(seed)
    for n in range(count):
        request = RawRequest(headers=[(b"Host", b"127.0.0.1")])
        chosen = [MUTATIONS[n % len(MUTATIONS)], *rng.sample(HEADER_MUTATIONS, rng.randint(0, 2))]
        if n % 10 == 0:
            chosen = []
            request.trace_id = _valid_parent(rng, request)
            request.labels.append("valid")
            request.headers.append((b"tracestate", b"rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"))
            request.headers.append((b"baggage", b"userId=alice,serverNode=DF%2028"))
        for mutate in chosen:
            mutate(rng, request)
            request.labels.append(mutate.__name__.lstrip("_"))
        yield request


def status_line(port: int, data: bytes, timeout: float = 10.0) -> str:
    """The first line the server answers, or how the connection ended without one."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        with contextlib.suppress(OSError):  # the server may answer and close before reading it all
            sock.sendall(data)
        received = b""
        try:
            while b"\n" not in received:
                chunk = sock.recv(4096)
                if not chunk:
                    return "<closed>" if not received else received.decode("latin-1")
                received += chunk
        except socket.timeout:
            return "<timeout>"
        except ConnectionResetError:
            return "<reset>" if not received else received.decode("latin-1")
    return received.split(b"\n", 1)[0].rstrip(b"\r").decode("latin-1")


# ============================================================================ the apps and servers

STARLETTE_APP = """
import asyncio
import os
import urllib.request

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

ECHO = os.environ["HOSTILE_ECHO_URL"]


def call_echo():
    with urllib.request.urlopen(ECHO, timeout=10) as answer:
        answer.read()


class Forward:  # an ASGI app as the endpoint, no methods given: every method reaches it
    async def __call__(self, scope, receive, send):
        await asyncio.to_thread(call_echo)
        await PlainTextResponse("forwarded")(scope, receive, send)


async def item(request):
    return PlainTextResponse(repr(request.path_params["item_id"]) + repr(dict(request.query_params)))


async def home(request):
    return PlainTextResponse("home")


app = Starlette(
    routes=[
        Route("/forward", Forward()),
        Route("/forward/{rest:path}", Forward()),
        Route("/items/{item_id}", item),
        Route("/", home),
    ]
)
"""

FLASK_APP = """
import os
import urllib.request

from flask import Flask, request

ECHO = os.environ["HOSTILE_ECHO_URL"]
app = Flask(__name__)


@app.route("/forward", methods=["GET", "POST", "PUT", "DELETE", "PATCH", "PROPFIND", "QUERY"])
@app.route("/forward/<path:rest>")
def forward(rest=""):
    with urllib.request.urlopen(ECHO, timeout=10) as answer:
        answer.read()
    return "forwarded"


@app.route("/items/<item_id>")
def item(item_id):
    return repr(item_id) + repr(dict(request.args))


@app.route("/")
def home():
    return "home"
"""

STACKS: dict[str, tuple[str, str, list[str]]] = {
    "uvicorn-starlette": (
        "hostile_starlette",
        STARLETTE_APP,
        [
            "uvicorn",
            "--host",
            "127.0.0.1",
            "--port",
            "{port}",
            "--log-level",
            "warning",
            "hostile_starlette:app",
        ],
    ),
    "gunicorn-flask": (
        "hostile_flask",
        FLASK_APP,
        ["gunicorn", "-w", "1", "-b", "127.0.0.1:{port}", "--log-level", "warning", "hostile_flask:app"],
    ),
}


class Echo:
    """A loopback HTTP server that keeps the trace headers of every request it gets."""

    def __init__(self) -> None:
        seen: list[dict[str, list[str]]] = []
        self.seen = seen

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                names = [*FORWARDED, *(k.lower() for k in self.headers if k.lower().startswith("uberctx-"))]
                seen.append({name: self.headers.get_all(name) or [] for name in names})
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/echo"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Server:
    port: int
    process: subprocess.Popen[str]
    stderr: Path


@contextlib.contextmanager
def serve(stack: str, folder: Path, env: dict[str, str], traced: bool) -> Iterator[Server]:
    """One server of ``stack``, the app written to ``folder``, traced by the CLI or not."""
    module, source, command = STACKS[stack]
    if not (folder / f"{module}.py").exists():
        write_script(folder, f"{module}.py", source)
    port = free_port()
    args = [part.format(port=port) for part in command]
    if traced:
        args.insert(0, AUTOTRACE)
    log = folder / f"{stack}-{'traced' if traced else 'plain'}-{port}.stderr"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            args, env=env, cwd=folder, stdout=subprocess.DEVNULL, stderr=stderr, text=True
        )
        try:
            wait_until_listening(port, process)
            yield Server(port, process, log)
        finally:
            stop(process)


def traced_server_env(receiver: OTLPReceiver, folder: Path, echo: Echo, service: str) -> dict[str, str]:
    return traced_env(
        receiver,
        PYTHONPATH=f"{folder}",
        HOSTILE_ECHO_URL=echo.url,
        OTEL_SERVICE_NAME=service,
        OTEL_BSP_SCHEDULE_DELAY="100",
        OTEL_PROPAGATORS="tracecontext,baggage,b3,jaeger",
        AUTOTRACE_BAGGAGE_TARGETS="127.0.0.1",
        OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST=(
            "user-agent,x-junk,x-forwarded-for,traceparent,tracestate,baggage,host,x-h1"
        ),
    )


def plain_server_env(folder: Path, echo: Echo) -> dict[str, str]:
    return clean_env(PYTHONPATH=f"{folder}", HOSTILE_ECHO_URL=echo.url)


# ============================================================================ the run and its checks


@dataclass
class Run:
    """One stack's run: the same requests to the traced and the untraced server, and what came of it."""

    stack: str
    requests: list[RawRequest]
    answers: list[tuple[str, str]]  # (traced, untraced) status lines
    forwarded: list[dict[str, list[str]]]  # trace headers of each call the traced app made
    plain_forwarded: int
    spans: list[ReceivedSpan]
    traced_stderr: str
    plain_stderr: str


def is_sampled(seen: dict[str, list[str]]) -> bool:
    values = seen["traceparent"]
    return len(values) == 1 and values[0].endswith(("1", "3"))  # flags 01, 03 (04+ is never sent)


@pytest.fixture(scope="module", params=sorted(STACKS))
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Run:
    stack, folder = request.param, tmp_path_factory.mktemp("hostile")
    requests = list(hostile_requests(SEED, COUNT))
    traced_echo, plain_echo = Echo(), Echo()
    try:
        with OTLPReceiver(grpc=False) as receiver:
            env = traced_server_env(receiver, folder, traced_echo, stack)
            with (
                serve(stack, folder, env, traced=True) as traced,
                serve(stack, folder, plain_server_env(folder, plain_echo), traced=False) as plain,
            ):
                answers = [
                    (status_line(traced.port, r.encode()), status_line(plain.port, r.encode()))
                    for r in requests
                ]
                # A CLIENT span for every call made in a sampled trace (the caller's flags decide).
                sampled = [seen for seen in traced_echo.seen if is_sampled(seen)]
                receiver.wait_for_spans(len(sampled), timeout=30, predicate=lambda s: s.kind == CLIENT)
            spans = receiver.spans
    finally:
        traced_echo.close()
        plain_echo.close()
    return Run(
        stack,
        requests,
        answers,
        list(traced_echo.seen),
        len(plain_echo.seen),
        spans,
        traced.stderr.read_text(),
        plain.stderr.read_text(),
    )


def test_every_request_gets_the_answer_it_gets_untraced(run: Run) -> None:
    different = [
        (n, r.labels, traced, plain)
        for n, (r, (traced, plain)) in enumerate(zip(run.requests, run.answers))
        if traced != plain
    ]
    assert different == []  # so no 5xx (and no dropped connection) that the untraced app did not give
    # The run exercised the apps: many requests were answered and forwarded, not all refused.
    assert sum(traced.startswith("HTTP/1.1 200") for traced, _ in run.answers) >= COUNT // 4
    assert len(run.forwarded) == run.plain_forwarded >= COUNT // 4


def test_no_internal_error(run: Run) -> None:
    said = [
        line for line in run.traced_stderr.splitlines() if "internal error" in line or "autotrace:" in line
    ]
    assert said == []


def test_what_the_app_sends_on_is_valid_and_continues_the_trace(run: Run) -> None:
    client_spans = {s.span_id: s for s in run.spans if s.kind == CLIENT}
    trace_ids = set()
    for seen in run.forwarded:
        assert all(len(values) <= 1 for values in seen.values()), seen  # each header written once
        carrier = {name: values[0] for name, values in seen.items() if values}
        check_outgoing(carrier)  # traceparent, tracestate, baggage, b3, jaeger: each valid, within limits
        check_traceparent(carrier["traceparent"])
        _, trace_id, span_id, _ = carrier["traceparent"].split("-")
        trace_ids.add(trace_id)
        if is_sampled(seen):  # the span that sent it was exported
            assert client_spans[span_id].trace_id == trace_id
    valid = [r.trace_id for r in run.requests if r.trace_id]
    assert valid and set(valid) <= trace_ids


def test_every_attribute_is_within_the_default_length_limit(run: Run) -> None:
    assert run.spans
    for span in run.spans:
        values = [*span.attributes.values(), *(v for _, attrs in span.events for v in attrs.values())]
        for value in values:
            for item in value if isinstance(value, tuple) else (value,):
                assert not isinstance(item, str) or len(item) <= VALUE_LIMIT, (span.name, len(item))
        assert len(span.name) <= 300, span.name


# Log lines told apart by their text alone: no time stamp, process id or port.
_LOG_NOISE = re.compile(r"^\[[^\]]*\] \[\d+\] |\d{4,5}")


def test_hostile_input_adds_no_line_to_the_servers_log(run: Run) -> None:
    traced = Counter(_LOG_NOISE.sub("", line) for line in run.traced_stderr.splitlines())
    plain = Counter(_LOG_NOISE.sub("", line) for line in run.plain_stderr.splitlines())
    assert traced - plain == Counter()
