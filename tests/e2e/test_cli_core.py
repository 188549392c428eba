"""The agent core through the real CLI: launcher, bootstrap, export over each protocol, processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import AUTOTRACE, clean_env, run, traced_env, warnings_in, write_script
from tests.otlp_receiver import OTLPReceiver

pytestmark = pytest.mark.e2e

APP = """
import sys
from opentelemetry import trace

tracer = trace.get_tracer("app")
with tracer.start_as_current_span("parent", attributes={"who": "app"}):
    with tracer.start_as_current_span("child"):
        pass
print("done", sys.argv[1:])
"""


@pytest.mark.parametrize("protocol", ["http/protobuf", "http/json", "grpc"])
def test_spans_from_the_app_arrive_with_service_and_resource(
    tmp_path: Path, receiver: OTLPReceiver, protocol: str
) -> None:
    app = write_script(tmp_path, "app.py", APP)
    env = traced_env(receiver, protocol, OTEL_RESOURCE_ATTRIBUTES="deployment.environment=test")
    result = run([AUTOTRACE, "python", str(app), "a", "b"], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "done ['a', 'b']\n"
    assert warnings_in(result.stderr) == []
    spans = {s.name: s for s in receiver.wait_for_spans(2)}
    parent, child = spans["parent"], spans["child"]
    assert child.parent_span_id == parent.span_id
    assert child.trace_id == parent.trace_id
    assert parent.attributes == {"who": "app"}
    assert parent.transport == protocol
    resource = parent.resource
    assert resource["service.name"] == "app"  # derived from `python app.py`
    assert resource["deployment.environment"] == "test"
    assert resource["telemetry.distro.name"] == "autotrace"
    assert resource["telemetry.sdk.language"] == "python"
    assert resource["process.runtime.name"] == "cpython"
    assert isinstance(resource["process.pid"], int)
    assert resource["host.name"]


def test_service_name_option_and_variable(tmp_path: Path, receiver: OTLPReceiver) -> None:
    app = write_script(tmp_path, "app.py", APP)
    result = run([AUTOTRACE, "--service-name", "users", "python", str(app)], traced_env(receiver))
    assert result.returncode == 0, result.stderr
    assert {s.resource["service.name"] for s in receiver.wait_for_spans(2)} == {"users"}


def test_users_own_sitecustomize_still_runs(tmp_path: Path, receiver: OTLPReceiver) -> None:
    own = tmp_path / "own"
    own.mkdir()
    write_script(own, "sitecustomize.py", "import builtins\nbuiltins.USER_SITECUSTOMIZE = 'ran'\n")
    app = write_script(
        tmp_path,
        "app.py",
        "import builtins, sys\n"
        "import sitecustomize\n"
        'print(builtins.USER_SITECUSTOMIZE, sitecustomize.__file__.endswith("own/sitecustomize.py"))\n'
        + textwrap.dedent(APP),
    )
    env = traced_env(receiver, PYTHONPATH=str(own))
    result = run([AUTOTRACE, "python", str(app)], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "ran True"
    receiver.wait_for_spans(2)


def test_pythonpath_gets_only_the_bootstrap_folder(tmp_path: Path, receiver: OTLPReceiver) -> None:
    app = write_script(tmp_path, "app.py", "import os\nprint(os.environ['PYTHONPATH'])\n")
    env = traced_env(receiver, PYTHONPATH="/keep/me")
    result = run([AUTOTRACE, "python", str(app)], env, cwd=tmp_path)
    bootstrap = run([AUTOTRACE, "bootstrap-path"], env).stdout.strip()
    assert result.stdout.strip() == os.pathsep.join([bootstrap, "/keep/me"])
    assert sorted(os.listdir(bootstrap)) in (["sitecustomize.py"], ["__pycache__", "sitecustomize.py"])


def test_a_bad_variable_gives_one_warning_and_tracing_still_works(
    tmp_path: Path, receiver: OTLPReceiver
) -> None:
    app = write_script(tmp_path, "app.py", APP)
    env = traced_env(receiver, OTEL_TRACES_SAMPLER="sometimes", OTEL_BSP_MAX_QUEUE_SIZE="lots")
    result = run([AUTOTRACE, "python", str(app)], env)
    assert result.returncode == 0, result.stderr
    said = warnings_in(result.stderr)
    assert len(said) == 2, result.stderr
    assert "OTEL_TRACES_SAMPLER='sometimes'" in said[0]
    assert "OTEL_BSP_MAX_QUEUE_SIZE='lots'" in said[1]
    assert len(receiver.wait_for_spans(2)) == 2


CHECK_DISABLED = """
import sys
from opentelemetry import trace
import autotrace.bootstrap as b
with trace.get_tracer("x").start_as_current_span("never"):
    pass
finders = [type(f).__name__ for f in sys.meta_path]
print(b.agent() is None, type(trace.get_tracer_provider()).__name__, "_Finder" in finders)
"""


@pytest.mark.parametrize("variable", ["OTEL_SDK_DISABLED=true", "AUTOTRACE_ENABLED=false"])
def test_disabled_does_nothing_at_all(tmp_path: Path, receiver: OTLPReceiver, variable: str) -> None:
    app = write_script(tmp_path, "app.py", CHECK_DISABLED)
    name, value = variable.split("=")
    result = run([AUTOTRACE, "python", str(app)], traced_env(receiver, **{name: value}))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True ProxyTracerProvider False"
    assert result.stderr == ""
    time.sleep(0.5)  # nothing is expected; give a wrong export the time it would take to show
    assert receiver.spans == []


def test_another_agent_makes_autotrace_stand_down(tmp_path: Path, receiver: OTLPReceiver) -> None:
    other = tmp_path / "site" / "opentelemetry" / "instrumentation" / "auto_instrumentation"
    other.mkdir(parents=True)
    app = write_script(tmp_path, "app.py", CHECK_DISABLED)
    result = run([AUTOTRACE, "python", str(app)], traced_env(receiver, PYTHONPATH=str(other)))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True ProxyTracerProvider False"
    said = warnings_in(result.stderr)
    assert len(said) == 1 and "opentelemetry-instrument is already active" in said[0]


def test_exit_code_stdin_and_streams_are_the_commands_own(tmp_path: Path, receiver: OTLPReceiver) -> None:
    app = write_script(
        tmp_path,
        "app.py",
        """
        import sys
        data = sys.stdin.read()
        print(data.upper())
        print('err', file=sys.stderr)
        sys.exit(7)
        """,
    )
    result = run([AUTOTRACE, "python", str(app)], traced_env(receiver), input="hello")
    assert (result.returncode, result.stdout, result.stderr) == (7, "HELLO\n", "err\n")


def test_missing_command_is_127_with_a_clear_message(receiver: OTLPReceiver) -> None:
    result = run([AUTOTRACE, "no-such-command-xyz", "--flag"], traced_env(receiver))
    assert result.returncode == 127
    assert result.stderr == "autotrace: command not found: no-such-command-xyz\n"


def test_usage_errors(receiver: OTLPReceiver) -> None:
    assert run([AUTOTRACE], traced_env(receiver)).returncode == 2
    assert run([AUTOTRACE, "--bogus", "python"], traced_env(receiver)).returncode == 2
    version = run([AUTOTRACE, "--version"], traced_env(receiver))
    assert version.returncode == 0 and version.stdout.startswith("autotrace ")
    help_ = run([AUTOTRACE, "--help"], traced_env(receiver))
    assert help_.returncode == 0 and "bootstrap-path" in help_.stdout


def test_python_module_and_console_script(tmp_path: Path, receiver: OTLPReceiver) -> None:
    pkg = tmp_path / "svcmod"
    pkg.mkdir()
    write_script(pkg, "__init__.py", "")
    write_script(pkg, "__main__.py", APP)
    result = run([AUTOTRACE, "python", "-m", "svcmod"], traced_env(receiver), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert {s.resource["service.name"] for s in receiver.wait_for_spans(2)} == {"svcmod"}


def test_python_children_inherit_tracing(tmp_path: Path, receiver: OTLPReceiver) -> None:
    write_script(
        tmp_path, "child.py", APP.replace('"parent"', '"child-proc"').replace('"child"', '"grandchild"')
    )
    app = write_script(
        tmp_path,
        "app.py",
        """
        import subprocess, sys
        from opentelemetry import trace
        with trace.get_tracer("app").start_as_current_span("spawn"):
            subprocess.run([sys.executable, "child.py"], check=True)
        """,
    )
    result = run([AUTOTRACE, "python", str(app)], traced_env(receiver), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    spans = {s.name: s for s in receiver.wait_for_spans(3)}
    assert spans["child-proc"].resource["service.name"] == "child"
    assert spans["spawn"].resource["service.name"] == "app"
    # one rule: the parent's context is not inherited implicitly
    assert spans["child-proc"].trace_id != spans["spawn"].trace_id


def test_a_script_that_exits_at_once_delivers_its_spans(tmp_path: Path, receiver: OTLPReceiver) -> None:
    app = write_script(
        tmp_path,
        "app.py",
        """
        import sys
        from opentelemetry import trace
        for i in range(50):
            with trace.get_tracer("app").start_as_current_span(f"s{i}"):
                pass
        sys.exit(0)
        """,
    )
    # a long schedule delay: only the exit flush can deliver them
    result = run([AUTOTRACE, "python", str(app)], traced_env(receiver, OTEL_BSP_SCHEDULE_DELAY="60000"))
    assert result.returncode == 0, result.stderr
    assert len(receiver.wait_for_spans(50)) == 50


def test_sigterm_flushes_and_the_process_still_dies_of_sigterm(
    tmp_path: Path, receiver: OTLPReceiver
) -> None:
    app = write_script(
        tmp_path,
        "app.py",
        """
        import sys, time
        from opentelemetry import trace
        with trace.get_tracer("app").start_as_current_span("before-term"):
            pass
        print("ready", flush=True)
        time.sleep(60)
        """,
    )
    env = traced_env(receiver, OTEL_BSP_SCHEDULE_DELAY="60000")
    proc = subprocess.Popen([AUTOTRACE, "python", str(app)], env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == -signal.SIGTERM
    assert [s.name for s in receiver.wait_for_spans(1)] == ["before-term"]


def test_exit_does_not_hang_when_the_endpoint_is_down(tmp_path: Path) -> None:
    app = write_script(tmp_path, "app.py", APP)
    with OTLPReceiver(grpc=False) as dead:
        endpoint = dead.http_endpoint  # a port that was just closed
    env = clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, AUTOTRACE_SHUTDOWN_TIMEOUT="2000")
    started = time.monotonic()
    result = run([AUTOTRACE, "python", str(app)], env, timeout=30)
    assert result.returncode == 0
    assert time.monotonic() - started < 25  # bounded by AUTOTRACE_SHUTDOWN_TIMEOUT, not the retries
    said = warnings_in(result.stderr)
    assert len(said) >= 1 and "could not export" in said[0]


GUNICORN_CONF = """
import json
import os
from opentelemetry import trace

workers = 2
bind = "127.0.0.1:0"

def post_worker_init(worker):
    with trace.get_tracer("conf").start_as_current_span("worker-ready", attributes={"pid": os.getpid()}):
        pass
"""

WSGI_APP = """
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
"""


# "preload+pool": the preloaded app imports concurrent.futures.thread after the SDK was built, as every
# Django project does through asgiref; the SDK's own after-fork step then hung each worker.
@pytest.mark.parametrize("mode", ["plain", "preload", "preload+pool"])
def test_gunicorn_two_workers_both_export(tmp_path: Path, receiver: OTLPReceiver, mode: str) -> None:
    write_script(tmp_path, "conf.py", GUNICORN_CONF)
    imports = "import concurrent.futures.thread\n" if mode == "preload+pool" else ""
    write_script(tmp_path, "wsgiapp.py", imports + "from opentelemetry import trace\n" + WSGI_APP)
    preload = ["--preload"] if mode != "plain" else []
    args = [AUTOTRACE, "gunicorn", "-c", "conf.py", *preload, "wsgiapp:app"]
    proc = subprocess.Popen(args, env=traced_env(receiver), cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        spans = receiver.wait_for_spans(2, timeout=30, predicate=lambda s: s.name == "worker-ready")
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    pids = {s.attributes["pid"] for s in spans}
    assert len(pids) == 2, stderr
    assert {s.resource["process.pid"] for s in spans} == pids
    assert {s.resource["service.name"] for s in spans} == {"wsgiapp"}
    assert "Traceback" not in stderr


def test_multiprocessing_fork_children_export(tmp_path: Path, receiver: OTLPReceiver) -> None:
    app = write_script(
        tmp_path,
        "app.py",
        """
        import multiprocessing, os
        from opentelemetry import trace

        def work(i):
            with trace.get_tracer("w").start_as_current_span("work", attributes={"pid": os.getpid()}):
                return i

        if __name__ == "__main__":
            with trace.get_tracer("app").start_as_current_span("main"):
                pass
            ctx = multiprocessing.get_context("fork")
            procs = [ctx.Process(target=work, args=(i,)) for i in range(2)]
            for p in procs: p.start()
            for p in procs: p.join()
        """,
    )
    result = run([AUTOTRACE, "python", str(app)], traced_env(receiver, OTEL_BSP_SCHEDULE_DELAY="60000"))
    assert result.returncode == 0, result.stderr
    spans = receiver.wait_for_spans(3)
    work = [s for s in spans if s.name == "work"]
    assert len({s.attributes["pid"] for s in work}) == 2
    assert [s.name for s in spans].count("main") == 1  # the parent's queue was not exported twice


PROPAGATE_APP = """
import json
from opentelemetry import propagate, trace

incoming = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "tracestate": "k=v"}
ctx = propagate.extract(incoming)
with trace.get_tracer("app").start_as_current_span("handle", context=ctx):
    outgoing = {}
    propagate.inject(outgoing)
print(json.dumps(outgoing, sort_keys=True))
"""


def test_propagators_from_the_environment_and_a_bad_name_never_breaks_the_app(
    tmp_path: Path, receiver: OTLPReceiver
) -> None:
    app = write_script(tmp_path, "app.py", PROPAGATE_APP)
    env = traced_env(receiver, OTEL_PROPAGATORS="tracecontext,b3multi,nosuch")
    result = run([AUTOTRACE, "python", str(app)], env)
    assert result.returncode == 0, result.stderr  # the API alone would raise at import on 'nosuch'
    said = warnings_in(result.stderr)
    assert len(said) == 1 and "nosuch" in said[0], result.stderr
    (span,) = receiver.wait_for_spans(1)
    assert span.trace_id == "0af7651916cd43dd8448eb211c80319c"
    assert span.parent_span_id == "b7ad6b7169203331"
    assert span.trace_state == "k=v"
    outgoing = json.loads(result.stdout)
    assert outgoing["traceparent"] == f"00-{span.trace_id}-{span.span_id}-01"
    assert outgoing["tracestate"] == "k=v"
    assert outgoing["x-b3-traceid"] == span.trace_id
    assert outgoing["x-b3-spanid"] == span.span_id
    assert outgoing["x-b3-sampled"] == "1"


SAMPLED_APP = """
from opentelemetry import trace

tracer = trace.get_tracer("app")
for name in ["GET /healthz", "POST /orders", "GET /healthz", "POST /orders"]:
    method, path = name.split()
    with tracer.start_as_current_span(name, attributes={"http.request.method": method, "url.path": path}):
        pass
with tracer.start_as_current_span("background"):
    pass
"""


def test_sampler_and_rules_from_the_environment(tmp_path: Path, receiver: OTLPReceiver) -> None:
    app = write_script(tmp_path, "app.py", SAMPLED_APP)
    rules = '[{"path": "/healthz", "ratio": 0}, {"method": "post", "path": "/orders*", "ratio": 1}]'
    env = traced_env(
        receiver,
        OTEL_TRACES_SAMPLER="traceidratio",
        OTEL_TRACES_SAMPLER_ARG="0",
        AUTOTRACE_SAMPLING_RULES=rules,
    )
    result = run([AUTOTRACE, "python", str(app)], env)
    assert result.returncode == 0, result.stderr
    assert warnings_in(result.stderr) == []
    spans = receiver.wait_for_spans(2)
    time.sleep(0.5)  # nothing else may follow
    assert sorted(s.name for s in receiver.spans) == ["POST /orders", "POST /orders"]
    assert [s.name for s in spans] == ["POST /orders", "POST /orders"]


@pytest.mark.parametrize("first", ["opentelemetry.propagate", "autotrace.propagation"])
def test_b3_loaded_by_the_api_before_anything_else_builds_cleanly(
    tmp_path: Path, receiver: OTLPReceiver, first: str
) -> None:
    # opentelemetry.propagate loads our b3 entry point; that import is what builds the SDK here.
    app = write_script(tmp_path, "app.py", f"import {first}\n" + textwrap.dedent(APP))
    result = run([AUTOTRACE, "python", str(app)], traced_env(receiver, OTEL_PROPAGATORS="b3"))
    assert result.returncode == 0, result.stderr
    assert warnings_in(result.stderr) == []
    assert len(receiver.wait_for_spans(2)) == 2


SPAWN_APP = """
import multiprocessing
from opentelemetry import trace

def work():
    with trace.get_tracer("w").start_as_current_span("in-spawned-child"):
        pass

if __name__ == "__main__":
    child = multiprocessing.get_context("spawn").Process(target=work)
    child.start()
    child.join()
"""


def test_spawned_children_keep_the_derived_service_name(tmp_path: Path, receiver: OTLPReceiver) -> None:
    """uvicorn --workers/--reload and hypercorn start workers with Python's own spawn command line."""
    app = write_script(tmp_path, "billing.py", SPAWN_APP)
    result = run([AUTOTRACE, "python", str(app)], traced_env(receiver))
    assert result.returncode == 0, result.stderr
    (span,) = receiver.wait_for_spans(1)
    assert span.resource["service.name"] == "billing"
