"""Instrumentations: arm a post-import hook per library, install guarded, record what happened.

The status table feeds ``autotrace doctor`` and ``autotrace.status()``: for each instrumentation,
whether it is waiting for its library to be imported, installed, skipped (and why: disabled, library
version unsupported) or failed (and why). A failed install is undone and never breaks the import.
"""

from __future__ import annotations

import importlib
import threading

from autotrace import _errors, _hooks, _log

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from types import ModuleType
    from typing import Any, Callable

WAITING, INSTALLED, SKIPPED, FAILED, DISABLED = "waiting", "installed", "skipped", "failed", "disabled"


class Outcome:
    """What happened to one instrumentation (immutable once made)."""

    __slots__ = ("detail", "name", "state", "target", "version")

    def __init__(self, name: str, target: str, state: str, detail: str = "", version: str | None = None):
        self.name, self.target, self.state, self.detail, self.version = name, target, state, detail, version

    def replace(self, **changes: Any) -> Outcome:
        values = {k: getattr(self, k) for k in self.__slots__}
        values.update(changes)
        return Outcome(**values)

    def __repr__(self) -> str:
        return f"Outcome({self.name!r}, {self.state!r}, {self.detail!r}, version={self.version!r})"


_status: dict[str, Outcome] = {}
_lock = threading.Lock()


def status() -> dict[str, Outcome]:
    with _lock:
        return dict(_status)


def _record(outcome: Outcome) -> None:
    with _lock:
        _status[outcome.name] = outcome


def arm(
    registry: Mapping[str, str],
    disabled: frozenset[str],
    when_ready: Callable[[Callable[[Any], None]], None],
    config: Any,
    package: str = "autotrace.instrumentation",
) -> None:
    """Watch each registered library; install its instrumentation when it is first imported."""
    for name, target in registry.items():
        if name in disabled or target in disabled:
            _record(Outcome(name, target, DISABLED, "disabled by configuration"))
            continue
        _record(Outcome(name, target, WAITING, f"{target} not imported yet"))
        _hooks.when_imported(target, _installer(name, target, f"{package}.{name}", when_ready, config))


def _installer(
    name: str, target: str, module_name: str, when_ready: Callable[[Callable[[Any], None]], None], config: Any
) -> Callable[[ModuleType], None]:
    def on_import(_: ModuleType) -> None:
        def install(tracing: Any) -> None:
            install_one(name, target, module_name, tracing, config)

        # An instrumentation that makes no spans itself (it carries context) needs no SDK: installing
        # it must not build one, e.g. at start-up for a module that is already imported.
        if getattr(importlib.import_module(module_name), "NEEDS_SDK", True):
            when_ready(install)
        else:
            install(None)

    return on_import


def install_one(name: str, target: str, module_name: str, tracing: Any, config: Any) -> Outcome:
    """Version check, then a guarded install; a failure is undone and recorded, never raised."""
    outcome = Outcome(name, target, FAILED, "not attempted")
    module: ModuleType | None = None
    try:
        module = importlib.import_module(module_name)
        requires = getattr(module, "REQUIRES", None)
        ok, version, why = check_requirement(requires)
        if not ok:
            outcome = Outcome(name, target, SKIPPED, why, version)
            _log.warn("%s is not traced: %s", target, why)
        else:
            module.install(tracing, config)
            outcome = Outcome(name, target, INSTALLED, "", version)
    except Exception as exc:
        outcome = outcome.replace(detail=f"{type(exc).__name__}: {exc}")
        _undo(module)
        _errors.report(f"installing {name}", exc)
        if _errors.is_strict():
            raise
    finally:
        _record(outcome)
    return outcome


def _undo(module: ModuleType | None) -> None:
    if module is None:
        return
    with _errors.guard("undoing a failed install"):
        module.uninstall()


def uninstall(name: str, package: str = "autotrace.instrumentation") -> None:
    """Restore what ``name`` patched (tests)."""
    module = importlib.import_module(f"{package}.{name}")
    module.uninstall()
    with _lock:
        old = _status.get(name)
        if old is not None:
            _status[name] = old.replace(state=WAITING, detail="uninstalled")


# --------------------------------------------------------------------------------------------------
# Requirements, from package metadata only (never by importing the library)

_CLAUSE = r"\s*(>=|<=|==|!=|>|<)\s*([0-9][0-9a-zA-Z.+-]*)\s*"


def check_requirement(requires: str | None) -> tuple[bool, str | None, str]:
    """``"psycopg >= 3.1, < 4"`` against the installed distribution: (ok, version, why not).

    ``"psycopg2|psycopg2-binary >= 2.8"``: the first of several distributions that is installed."""
    import re

    if not requires:
        return True, None, ""
    names, _, spec = requires.strip().partition(" ")
    found = ((d, installed_version(d)) for d in names.split("|"))
    dist, version = next(((d, v) for d, v in found if v is not None), (names, None))
    if version is None:
        shown = " or ".join(repr(d) for d in names.split("|"))
        return False, None, f"distribution {shown} is not installed"
    for clause in filter(None, (c.strip() for c in spec.split(","))):
        match = re.fullmatch(_CLAUSE, clause)
        if match is None:
            return False, version, f"cannot read the requirement {requires!r}"
        if not _compare(parse_version(version), match.group(1), parse_version(match.group(2))):
            return False, version, f"{dist} {version} is not supported (needs {spec.strip()})"
    return True, version, ""


def installed_version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def parse_version(text: str) -> tuple[int, ...]:
    """The leading release numbers: ``2.0.0rc1`` -> (2, 0, 0); good enough for lower/upper bounds."""
    import re

    parts = []
    for piece in text.split("."):
        digits = re.match(r"\d+", piece)
        if digits is None:
            break
        parts.append(int(digits.group()))
        if digits.end() != len(piece):
            break
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def _compare(have: tuple[int, ...], op: str, want: tuple[int, ...]) -> bool:
    return {
        ">=": have >= want,
        "<=": have <= want,
        "==": have == want,
        "!=": have != want,
        ">": have > want,
        "<": have < want,
    }[op]
