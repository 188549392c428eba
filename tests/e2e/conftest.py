"""End-to-end harness: the real ``autotrace`` CLI in a subprocess, spans caught by a real OTLP receiver."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.otlp_receiver import OTLPReceiver

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


def warnings_in(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("autotrace: WARNING")]


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    with OTLPReceiver() as r:
        yield r
