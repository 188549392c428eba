"""Log correlation through the real CLI: records carry the ids of the span that is current, and the ids
are those of the spans the collector receives."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.e2e.conftest import AUTOTRACE, clean_env, run, traced_env, warnings_in, write_script
from tests.otlp_receiver import OTLPReceiver

APP = """
import logging, sqlite3, sys, threading
from opentelemetry import trace

logging.basicConfig(
    stream=sys.stdout,
    level=logging.INFO,
    format="%(levelname)s|%(trace_id)s|%(span_id)s|%(trace_flags)s|%(service_name)s|%(message)s",
)
log = logging.getLogger("app")
log.info("before")
tracer = trace.get_tracer("app")
with tracer.start_as_current_span("outer"):
    log.info("inside")
    log.info("own", extra={"trace_id": "mine"})
    worker = threading.Thread(target=lambda: log.warning("in a thread"))
    worker.start()
    worker.join()
    with tracer.start_as_current_span("inner"):
        log.error("nested")
log.info("after")
"""


def lines(stdout: str) -> dict[str, list[str]]:
    """message -> [level, trace_id, span_id, sampled, service]; trace_flags read as its sampled bit
    (the W3C random-trace-id bit may be set beside it)."""
    got = {}
    for line in stdout.splitlines():
        *fields, message = line.split("|")
        if fields[3]:
            fields[3] = "sampled" if int(fields[3], 16) & 1 else "unsampled"
        got[message] = fields
    return got


def test_records_carry_the_current_span_and_the_service(tmp_path: Path, receiver: OTLPReceiver) -> None:
    app = write_script(tmp_path, "app.py", APP)
    result = run([AUTOTRACE, "--service-name", "logsvc", "python", str(app)], traced_env(receiver))
    assert result.returncode == 0, result.stderr
    spans = {s.name: s for s in receiver.wait_for_spans(2)}
    outer, inner = spans["outer"], spans["inner"]
    got = lines(result.stdout)
    assert got["before"] == ["INFO", "", "", "", "logsvc"]
    assert got["inside"] == ["INFO", outer.trace_id, outer.span_id, "sampled", "logsvc"]
    assert got["own"] == ["INFO", "mine", outer.span_id, "sampled", "logsvc"]  # the app's extra wins
    assert got["in a thread"] == ["WARNING", outer.trace_id, outer.span_id, "sampled", "logsvc"]
    assert got["nested"] == ["ERROR", inner.trace_id, inner.span_id, "sampled", "logsvc"]
    assert got["after"] == ["INFO", "", "", "", "logsvc"]
    assert warnings_in(result.stderr) == []


def test_unsampled_spans_give_their_ids_and_flags(tmp_path: Path, receiver: OTLPReceiver) -> None:
    app = write_script(tmp_path, "app.py", APP)
    env = traced_env(receiver, OTEL_TRACES_SAMPLER="always_off")
    result = run([AUTOTRACE, "python", str(app)], env)
    assert result.returncode == 0, result.stderr
    trace_id, span_id, flags = lines(result.stdout)["inside"][1:4]
    assert len(trace_id) == 32 and len(span_id) == 16 and flags == "unsampled"


def test_correlation_can_be_turned_off(tmp_path: Path, receiver: OTLPReceiver) -> None:
    app = write_script(
        tmp_path,
        "app.py",
        """
        import logging
        from opentelemetry import trace
        class Keep(logging.Handler):
            def emit(self, record):
                print(getattr(record, "trace_id", "absent"))
        logging.getLogger().addHandler(Keep())
        with trace.get_tracer("app").start_as_current_span("outer"):
            logging.getLogger("app").warning("inside")
        """,
    )
    result = run([AUTOTRACE, "python", str(app)], traced_env(receiver, AUTOTRACE_LOG_CORRELATION="false"))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "absent\n"


FORMAT_APP = """
import logging, sys
from opentelemetry import trace
logging.basicConfig(stream=sys.stdout, level=logging.INFO{extra})
with trace.get_tracer("app").start_as_current_span("outer") as span:
    logging.getLogger("app").info("hello")
    ctx = span.get_span_context()
    print("ids", format(ctx.trace_id, "032x"), format(ctx.span_id, "016x"), format(ctx.trace_flags, "02x"))
"""


def test_log_format_injects_the_fields_into_the_root_handler(tmp_path: Path, receiver: OTLPReceiver) -> None:
    for name, extra, variable, expected in [
        ("default", "", "true", "INFO:app:[trace_id={t} span_id={s} trace_flags={f} service.name=fmt] hello"),
        ("brace", ', format="{levelname} {message}", style="{"', "true", "INFO [trace_id={t} span_id={s} "),
        ("own", ', format="%(message)s"', "trace=%(trace_id)s", "trace={t} hello"),
    ]:
        app = write_script(tmp_path, f"{name}.py", FORMAT_APP.format(extra=extra))
        env = traced_env(receiver, OTEL_SERVICE_NAME="fmt", AUTOTRACE_LOG_FORMAT=variable)
        result = run([AUTOTRACE, "python", str(app)], env)
        assert result.returncode == 0, result.stderr
        logged, ids = result.stdout.splitlines()
        _, trace_id, span_id, flags = ids.split()
        assert logged.startswith(expected.format(t=trace_id, s=span_id, f=flags)), (name, logged)
        assert warnings_in(result.stderr) == []


def test_a_bad_log_format_is_one_warning(tmp_path: Path, receiver: OTLPReceiver) -> None:
    app = write_script(tmp_path, "app.py", FORMAT_APP.format(extra=""))
    result = run([AUTOTRACE, "python", str(app)], traced_env(receiver, AUTOTRACE_LOG_FORMAT="trace please"))
    assert result.returncode == 0, result.stderr
    said = warnings_in(result.stderr)
    assert len(said) == 1 and "AUTOTRACE_LOG_FORMAT" in said[0]
    assert result.stdout.startswith("INFO:app:hello\n")


def test_logging_alone_does_not_build_the_sdk(tmp_path: Path) -> None:
    code = (
        "import logging, sys; logging.getLogger('x').warning('w'); print('opentelemetry.sdk' in sys.modules)"
    )
    result = run([AUTOTRACE, sys.executable, "-c", code], clean_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout == "False\n"


def test_logging_first_imported_inside_concurrent_futures_is_fine(tmp_path: Path) -> None:
    # concurrent.futures imports logging half-way through loading itself: installing there must import
    # nothing that needs concurrent.futures complete (wrapt would, through asyncio).
    code = "from concurrent.futures import Future; import logging; print(logging.Logger.makeRecord)"
    result = run([AUTOTRACE, sys.executable, "-c", code], clean_env())
    assert result.returncode == 0, result.stderr
    assert "makeRecord" in result.stdout and warnings_in(result.stderr) == []
