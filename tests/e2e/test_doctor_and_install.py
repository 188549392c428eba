"""``autotrace doctor``, ``autotrace bootstrap-path`` in a container-style set-up, and the built wheel."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.e2e.conftest import AUTOTRACE, clean_env, run, traced_env, write_script
from tests.otlp_receiver import OTLPReceiver

REPO = Path(__file__).resolve().parents[2]

APP = """
from opentelemetry import trace
with trace.get_tracer("app").start_as_current_span("container-span"):
    pass
"""


def section(output: str, title: str) -> list[str]:
    lines = output.splitlines()
    start = lines.index(title) + 1
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("  ")), len(lines))
    return [line.strip() for line in lines[start:end]]


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_doctor_all_well(receiver: OTLPReceiver, protocol: str) -> None:
    env = traced_env(receiver, protocol, OTEL_SERVICE_NAME="users", OTEL_TRACES_SAMPLER="traceidratio")
    env["OTEL_TRACES_SAMPLER_ARG"] = "0.25"
    result = run([AUTOTRACE, "doctor"], env)
    assert result.returncode == 0, result.stdout + result.stderr
    config = section(result.stdout, "Configuration")
    assert "service name    users" in config
    assert "sampler         traceidratio (arg 0.25)" in config
    assert "propagators     tracecontext, baggage" in config
    assert any(line.startswith("endpoint") and protocol in line for line in config)
    (endpoint,) = section(result.stdout, "Endpoint")
    assert "answers" in endpoint and "does not" not in endpoint
    assert section(result.stdout, "Problems") == ["none"]
    assert "can load autotrace" in section(result.stdout, "Python on PATH")[0]


def test_doctor_reports_bad_variables_and_a_dead_endpoint_with_exit_1() -> None:
    with OTLPReceiver(grpc=False) as gone:
        endpoint = gone.http_endpoint
    env = clean_env(
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_TRACES_SAMPLER="sometimes",
        AUTOTRACE_SAMPLING_RULES='[{"path": "/x"}]',
        OTEL_EXPORTER_OTLP_HEADERS="api-key=s3cret",
        OTEL_PYTHON_EXCLUDED_URLS="healthz,[bad",
    )
    result = run([AUTOTRACE, "doctor"], env)
    assert result.returncode == 1
    problems = section(result.stdout, "Problems")
    assert any("OTEL_TRACES_SAMPLER='sometimes'" in p for p in problems), problems
    assert any(p.startswith("AUTOTRACE_SAMPLING_RULES: rule 0") for p in problems), problems
    assert any(p.startswith("excluded URL pattern '[bad'") for p in problems), problems
    assert "does not answer" in section(result.stdout, "Endpoint")[0]
    assert "s3cret" not in result.stdout + result.stderr


def test_doctor_with_only_a_dead_endpoint_is_still_exit_1() -> None:
    with OTLPReceiver(grpc=False) as gone:
        endpoint = gone.http_endpoint
    result = run([AUTOTRACE, "doctor"], clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint))
    assert result.returncode == 1
    assert section(result.stdout, "Problems") == ["none"]


def test_bootstrap_path_on_pythonpath_traces_without_the_launcher(
    tmp_path: Path, receiver: OTLPReceiver
) -> None:
    folder = run([AUTOTRACE, "bootstrap-path"], clean_env()).stdout.strip()
    assert (Path(folder) / "sitecustomize.py").is_file()
    app = write_script(tmp_path, "app.py", APP)
    env = traced_env(receiver, PYTHONPATH=folder, OTEL_SERVICE_NAME="boxed")
    result = run([sys.executable, str(app)], env)
    assert result.returncode == 0, result.stderr
    (span,) = receiver.wait_for_spans(1)
    assert (span.name, span.resource["service.name"]) == ("container-span", "boxed")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(REPO)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("autotrace-*.whl")
    return built


def test_wheel_ships_the_bootstrap_privately(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "autotrace/_bootstrap/sitecustomize.py" in names
    assert not [n for n in names if n.split("/")[0] in ("sitecustomize.py", "sitecustomize")]
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "autotrace = autotrace.cli:main" in text
    assert "[opentelemetry_propagator]" in text


def test_installed_wheel_traces_and_stays_out_of_other_pythons(
    wheel: Path, tmp_path: Path, receiver: OTLPReceiver
) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    pip = [str(py), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)]
    subprocess.run(pip, check=True, capture_output=True, timeout=120)
    # The dependencies come from the test environment (its site-packages, not its .pth files).
    site = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = clean_env()
    env["PATH"] = f"{venv / 'bin'}:{env['PATH']}"

    folder = run([str(venv / "bin" / "autotrace"), "bootstrap-path"], env).stdout.strip()
    assert folder == str(Path(site) / "autotrace" / "_bootstrap")
    plain = run([str(py), "-c", "import sitecustomize; print(sitecustomize.__file__)"], env)
    assert folder not in plain.stdout + plain.stderr  # no top-level sitecustomize from us

    app = write_script(tmp_path, "app.py", APP)
    result = run(
        [str(venv / "bin" / "autotrace"), "python", str(app)], {**traced_env(receiver), "PATH": env["PATH"]}
    )
    assert result.returncode == 0, result.stderr
    (span,) = receiver.wait_for_spans(1)
    assert span.resource["telemetry.distro.name"] == "autotrace"
