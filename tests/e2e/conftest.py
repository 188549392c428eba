"""End-to-end harness: the real ``autotrace`` CLI in a subprocess, spans caught by a real OTLP receiver."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.otlp_receiver import ALL_PAYLOADS, OTLPReceiver

BIN = Path(sys.executable).parent
AUTOTRACE = str(BIN / "autotrace")


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without any OTEL_/AUTOTRACE_ setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AUTOTRACE_"))}
    env.pop("PYTHONPATH", None)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["AUTOTRACE_STRICT"] = "true"
    env["OTEL_BSP_SCHEDULE_DELAY"] = "200"
    env.update(extra)
    return env


def traced_env(receiver: OTLPReceiver, protocol: str = "http/protobuf", **extra: str) -> dict[str, str]:
    endpoint = receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint
    return clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_EXPORTER_OTLP_PROTOCOL=protocol, **extra)


def write_script(folder: Path, name: str, source: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(source))
    return path


def run(
    args: list[str], env: dict[str, str], cwd: Path | None = None, timeout: float = 60, **kw: object
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False, **kw
    )


def stop(process: subprocess.Popen[Any], timeout: float = 15) -> None:
    """Terminate a server, and kill it if it does not go within ``timeout``."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def warnings_in(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("autotrace: WARNING")]


# Secrets planted in requests, headers, URLs, SQL, Redis and baggage across the end-to-end suite (see
# test_security.py and the Echo server below). None may ever reach a collector.
PLANTED_SECRETS = (b"s3cr3t", b"secret-cookie", b"hunter2", b"secret-literal-123")


@pytest.fixture(scope="session", autouse=True)
def no_planted_secret_in_any_export() -> Iterator[None]:
    """After the whole session: grep every payload every receiver accepted for the planted secrets."""
    yield
    leaks = [
        (secret.decode(), payload[max(0, at - 80) : at + 40])
        for payload in ALL_PAYLOADS
        for secret in PLANTED_SECRETS
        if (at := payload.find(secret)) >= 0
    ]
    assert leaks == [], f"planted secrets reached a collector: {leaks[:5]}"


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    with OTLPReceiver() as r:
        yield r


STREAM_PAUSE = 1.0


class Echo(BaseHTTPRequestHandler):
    """Answers with the request headers it got, as JSON; /status/N answers N; /redirect goes to /final;
    /stream sends its headers at once and its body ``STREAM_PAUSE`` seconds later."""

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self.path.startswith("/stream"):
            self.send_response(200)
            self.send_header("Content-Length", "4")
            self.end_headers()
            self.wfile.flush()
            time.sleep(STREAM_PAUSE)
            self.wfile.write(b"done")
        elif self.path.startswith("/slow"):
            time.sleep(1.5)
            self._answer(200, b"{}")
        elif self.path.startswith("/status/"):
            self._answer(int(self.path.rsplit("/", 1)[1]), b"{}")
        elif self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", "/final")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            headers = {k.lower(): v for k, v in self.headers.items()}
            self._answer(200, json.dumps(headers).encode())

    def handle(self) -> None:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up first
            super().handle()

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Resp", "yes")
        self.send_header("Set-Cookie", "session=secret-cookie")
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def echo() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
