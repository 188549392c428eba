"""``autotrace doctor``: what autotrace will do in a process started from this environment.

Prints the resolved configuration, each instrumentation with its library's installed version and
whether it will apply, whether the endpoint answers, and every variable that could not be used.
Exit code: 0 when all is well, 1 when a variable could not be used or the endpoint does not answer.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time
from typing import TextIO
from urllib.parse import urlsplit

from autotrace import _instruments, bootstrap
from autotrace._version import __version__
from autotrace.config import Config
from autotrace.instrumentation import REGISTRY


def run(network: bool = True, out: TextIO = sys.stdout, env: dict[str, str] | None = None) -> int:
    env = dict(os.environ) if env is None else env
    config = Config.from_env(env)
    problems = [str(p) for p in config.problems] + _deeper_problems(config)
    lines = [f"autotrace {__version__} on Python {sys.version.split()[0]} ({sys.executable})", ""]
    lines += _configuration(config, env)
    lines += ["", "Instrumentations", *_instrumentations(config)]
    endpoint_ok = True
    if network and config.enabled and "otlp" in config.exporters:
        endpoint_ok, said = check_endpoint(config)
        lines += ["", "Endpoint", f"  {said}"]
    lines += ["", "Python on PATH", f"  {_python_on_path(env)}"]
    other = bootstrap.other_agent(env)
    if other:
        problems.append(f"{other} is set up in this environment: autotrace would stand down")
    lines += ["", "Problems"] + ([f"  {p}" for p in problems] or ["  none"])
    out.write("\n".join(lines) + "\n")
    return 1 if problems or not endpoint_ok else 0


def _deeper_problems(config: Config) -> list[str]:
    """Problems only the SDK-side parsers find (sampling rules, sampler argument, propagators)."""
    from autotrace import propagation, sampling

    problems: list[str] = []
    rules, errors = sampling.parse_rules(config.sampling_rules) if config.sampling_rules else ([], [])
    problems += [f"AUTOTRACE_SAMPLING_RULES: {e}" for e in errors]
    arg = None if config.sampler_arg is None else str(config.sampler_arg)
    problems += sampling.build_sampler(config.sampler, arg, rules)[1]
    unknown = propagation.build_propagator(list(config.propagators))[1]
    problems += [f"OTEL_PROPAGATORS: unknown propagator {name!r}" for name in unknown]
    import re

    for pattern in config.http.excluded_urls:
        try:
            re.compile(pattern)
        except re.error as exc:
            problems.append(
                f"excluded URL pattern {pattern!r} is not a regular expression ({exc}); matched as text"
            )
    return problems


def _log_fields(config: Config) -> str:
    if not config.log_correlation:
        return "off"
    where = f"; injected into root handlers: {config.log_format}" if config.log_format else ""
    return "trace_id, span_id, trace_flags, service_name on every logging record" + where


def _configuration(config: Config, env: dict[str, str]) -> list[str]:
    o, b = config.otlp, config.batch
    service = (
        config.service_name
        if config.service_name_explicit
        else "derived from each command line (python app.py -> app, uvicorn gateway:app -> gateway);"
        " set OTEL_SERVICE_NAME to choose"
    )
    rows = [
        ("tracing", "enabled" if config.enabled else "DISABLED (OTEL_SDK_DISABLED / AUTOTRACE_ENABLED)"),
        ("service name", service),
        ("resource", ", ".join(f"{k}={v}" for k, v in config.resource_attributes) or "(defaults only)"),
        ("exporters", ", ".join(config.exporters)),
        ("endpoint", f"{o.endpoint} ({o.protocol})"),
        ("export", f"timeout {o.timeout_s * 1000:g}ms, compression {o.compression}"),
        ("headers", ", ".join(f"{k}=***" for k, _ in o.headers) or "(none)"),
        (
            "sampler",
            config.sampler + (f" (arg {config.sampler_arg:g})" if config.sampler_arg is not None else ""),
        ),
        ("sampling rules", config.sampling_rules or "(none)"),
        ("propagators", ", ".join(config.propagators)),
        (
            "batching",
            f"queue {b.max_queue_size}, batch {b.max_export_batch_size}, "
            f"delay {b.schedule_delay_s * 1000:g}ms, export timeout {b.export_timeout_s * 1000:g}ms",
        ),
        ("outage buffer", f"{b.buffer_bytes / 1024 / 1024:g} MiB of encoded spans, oldest dropped first"),
        ("exit flush", f"at most {min(config.shutdown_timeout_s, b.export_timeout_s) * 1000:g}ms"),
        ("excluded URLs", ", ".join(config.http.excluded_urls) or "(none)"),
        (
            "captured hdrs",
            "request: "
            + (", ".join(config.http.capture_request_headers) or "-")
            + "; response: "
            + (", ".join(config.http.capture_response_headers) or "-"),
        ),
        ("redacted too", ", ".join(sorted(config.http.sanitize_fields)) or "(defaults only)"),
        ("traceresponse", "on" if config.http.trace_response else "off"),
        (
            "db statements",
            f"{config.db.statement}; sql comment {'on' if config.db.sqlcommenter else 'off'}; "
            f"connect spans {'on' if config.db.connect_spans else 'off'}",
        ),
        ("disabled", ", ".join(sorted(config.disabled_instrumentations)) or "(none)"),
        ("log fields", _log_fields(config)),
        ("log level", config.log_level),
    ]
    return ["Configuration"] + [f"  {k:<15} {v}" for k, v in rows]


def _instrumentations(config: Config) -> list[str]:
    if not REGISTRY:
        return ["  (none registered in this version)"]
    rows = [("NAME", "LIBRARY", "INSTALLED", "WILL APPLY")]
    for name, target in sorted(REGISTRY.items()):
        rows.append((name, target, *_will_apply(name, target, config)))
    width = [max(len(r[i]) for r in rows) for i in range(3)]
    return [f"  {r[0]:<{width[0]}}  {r[1]:<{width[1]}}  {r[2]:<{width[2]}}  {r[3]}" for r in rows]


def _will_apply(name: str, target: str, config: Config) -> tuple[str, str]:
    import importlib

    if name in config.disabled_instrumentations or target in config.disabled_instrumentations:
        return "-", "no: disabled by configuration"
    module = importlib.import_module(f"autotrace.instrumentation.{name}")
    requires = getattr(module, "REQUIRES", None)
    ok, version, why = _instruments.check_requirement(requires)
    shown = version or ("stdlib" if not requires else "not installed")
    if ok:
        return shown, "yes, when the app imports " + target.split(".")[0]
    return shown, f"no: {why}"


def check_endpoint(config: Config, timeout: float = 3.0) -> tuple[bool, str]:
    """Send an empty export request; any 2xx (or gRPC OK) means the endpoint answers."""
    o = config.otlp
    started = time.monotonic()
    try:
        if o.protocol == "grpc":
            _grpc_ping(config, timeout)
            status = "answers"
        else:
            code = _http_ping(config, timeout)
            if not 200 <= code < 300:
                return False, f"{o.endpoint} answered HTTP {code} to an empty export (wrong path or port?)"
            status = f"answers (HTTP {code})"
    except Exception as exc:  # noqa: BLE001 - any failure is the answer we report
        return False, f"{o.endpoint} does not answer: {type(exc).__name__}: {exc}"
    return True, f"{o.endpoint} {status} in {(time.monotonic() - started) * 1000:.0f} ms"


def _http_ping(config: Config, timeout: float) -> int:
    o = config.otlp
    url = urlsplit(o.endpoint)
    json = o.protocol == "http/json"
    conn_class = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
    conn = conn_class(url.hostname or "localhost", url.port, timeout=timeout)
    try:
        headers = dict(o.headers)
        headers["Content-Type"] = "application/json" if json else "application/x-protobuf"
        conn.request("POST", url.path or "/", body=b"{}" if json else b"", headers=headers)
        return conn.getresponse().status
    finally:
        conn.close()


def _grpc_ping(config: Config, timeout: float) -> None:
    import grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

    url = urlsplit(config.otlp.endpoint)
    target = f"{url.hostname}:{url.port or 4317}"
    secure = url.scheme == "https" and not config.otlp.insecure
    channel = (
        grpc.secure_channel(target, grpc.ssl_channel_credentials())
        if secure
        else grpc.insecure_channel(target)
    )
    try:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)  # type: ignore[no-untyped-call]
        stub.Export(
            trace_service_pb2.ExportTraceServiceRequest(), timeout=timeout, metadata=list(config.otlp.headers)
        )
    finally:
        channel.close()


def _python_on_path(env: dict[str, str]) -> str:
    """Whether the ``python`` a command would start can load autotrace (else it runs untraced)."""
    import shutil

    python = shutil.which("python", path=env.get("PATH")) or shutil.which("python3", path=env.get("PATH"))
    if python is None:
        return "no python on PATH"
    try:
        result = subprocess.run(
            [python, "-c", "import autotrace"],
            env={**env, "AUTOTRACE_ENABLED": "false"},
            capture_output=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{python}: could not be run ({exc})"
    if result.returncode == 0:
        return f"{python}: can load autotrace"
    return (
        f"{python}: cannot import autotrace; processes it runs will not be traced (install autotrace there)"
    )


def instrumentation_status() -> dict[str, _instruments.Outcome]:
    return _instruments.status()
