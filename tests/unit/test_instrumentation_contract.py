"""The contract every instrumentation module keeps (see docs/how-it-works.md), checked over the registry."""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from autotrace import _hooks, _patch, sdk
from autotrace.config import Config
from autotrace.instrumentation import REGISTRY

NAMES = sorted(REGISTRY)


@pytest.fixture(scope="module")
def tracing() -> Iterator[Any]:
    built, problems = sdk.build(Config.from_env({"OTEL_TRACES_EXPORTER": "none"}, argv=["unit"]))
    assert problems == []
    yield built


@pytest.mark.parametrize("name", NAMES)
def test_module_declares_the_contract(name: str) -> None:
    module = importlib.import_module(f"autotrace.instrumentation.{name}")
    assert module.__doc__ and len(module.__doc__.splitlines()) >= 3, "the docstring is the user doc"
    assert REGISTRY[name] == module.TARGET
    assert module.REQUIRES is None or isinstance(module.REQUIRES, str)
    assert callable(module.install) and callable(module.uninstall)


@pytest.mark.parametrize("name", NAMES)
def test_importing_an_instrumentation_imports_no_target(name: str) -> None:
    target = REGISTRY[name]
    code = (
        "import sys\n"
        f"before = {target!r} in sys.modules\n"
        f"import autotrace.instrumentation.{name}\n"
        f"print(before, {target!r} in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() in (["False", "False"], ["True", "True"])  # True/True: loaded by Python itself


def _snapshot(owner: str) -> list[tuple[Any, str]]:
    return _patch.patched(owner)


@pytest.mark.parametrize("name", NAMES)
def test_install_twice_wraps_once_and_uninstall_restores(name: str, tracing: Any) -> None:
    module = importlib.import_module(f"autotrace.instrumentation.{name}")
    importlib.import_module(module.TARGET)
    for sub in ("django.core.handlers.wsgi", "django.core.handlers.asgi", "starlette.applications"):
        if name in sub:
            importlib.import_module(sub)
    owner = module.__name__
    try:
        module.install(tracing, tracing.config)
        first = _snapshot(owner)
        assert first or _registered(module), f"{name} patched nothing"
        module.install(tracing, tracing.config)
        assert _snapshot(owner) == first
        assert all(_patch.is_wrapped_by(_raw(t, n), owner) for t, n in first)
    finally:
        module.uninstall()
    assert _snapshot(owner) == [] and not _registered(module)
    assert not any(_patch.is_wrapped_by(_raw(t, n), owner) for t, n in first)
    _hooks.clear()


def _registered(module: Any) -> bool:
    """For an instrumentation that registers with its library's own hook instead of patching."""
    return bool(getattr(module, "registered", lambda: False)())


def _raw(target: Any, name: str) -> Any:
    return target.__dict__.get(name) if isinstance(target, type) else getattr(target, name, None)
