"""In-process harness for one instrumentation against the real library and the real local services.

``instrumented("psycopg", AUTOTRACE_DB_STATEMENT="raw")`` installs that instrumentation with its own
SDK objects (spans kept in memory, exported synchronously) and uninstalls it afterwards; the services
are found on their standard local ports. A missing service skips its tests with the reason, unless
``AUTOTRACE_REQUIRE_SERVICES`` is set (CI sets it): then it fails them.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from autotrace import _hooks, sdk
from autotrace.config import Config

POSTGRES = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "postgres"}
POSTGRES_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
MARIADB = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": "", "database": "test"}
REDIS = {"host": "127.0.0.1", "port": 6379}


class Recorder:
    """The SDK objects an instrumentation is given, with every finished span kept in memory."""

    def __init__(self, **env: str) -> None:
        config = Config.from_env({"OTEL_TRACES_EXPORTER": "none", **env}, argv=["tests"])
        assert config.problems == (), config.problems
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracing = sdk.Tracing(config, self.provider, [])
        self.tracer: trace.Tracer = self.provider.get_tracer("tests")

    def spans(self, kind: trace.SpanKind | None = trace.SpanKind.CLIENT) -> list[ReadableSpan]:
        return [s for s in self.exporter.get_finished_spans() if kind is None or s.kind == kind]

    def clear(self) -> None:
        self.exporter.clear()


@contextlib.contextmanager
def instrumented(name: str, **env: str) -> Iterator[Recorder]:
    module = importlib.import_module(f"autotrace.instrumentation.{name}")
    importlib.import_module(module.TARGET)
    recorder = Recorder(**env)
    module.install(recorder.tracing, recorder.tracing.config)
    try:
        yield recorder
    finally:
        module.uninstall()
        _hooks.clear()


def require_service(name: str, port: int) -> None:
    """Skip (or, under AUTOTRACE_REQUIRE_SERVICES, fail) when nothing listens on the local ``port``."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError as exc:
        reason = f"{name} is not running on 127.0.0.1:{port} ({exc})"
        if os.environ.get("AUTOTRACE_REQUIRE_SERVICES"):
            pytest.fail(reason + "; AUTOTRACE_REQUIRE_SERVICES is set")
        pytest.skip(reason)


def attributes(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})
