"""Post-import hooks: run a callback right after a module is first imported, whatever the import order.

A finder at the front of ``sys.meta_path`` answers only for the watched names: it asks the other
finders for the real spec and wraps its loader so that, once the module's code has run, the hooks run.
A module that is already imported when a hook is registered gets its hook at once. Imports of any
other name cost one dict lookup.

Hooks run inside ``guard``: a failing hook is reported and the import still succeeds.
"""

from __future__ import annotations

import sys
import threading

from autotrace._errors import guard

TYPE_CHECKING = False  # importlib.abc and typing are too slow to import at start-up
if TYPE_CHECKING:
    import importlib.machinery
    from collections.abc import Sequence
    from types import ModuleType
    from typing import Any, Callable

    Hook = Callable[[ModuleType], None]

_hooks: dict[str, list[Hook]] = {}
_late: set[str] = set()  # watched while already being imported: run at the next import after it ends
_lock = threading.RLock()
_finder: _Finder | None = None


def when_imported(name: str, hook: Hook) -> None:
    """Call ``hook(module)`` once ``name`` has been imported (now, if it already has been)."""
    with _lock:
        module = sys.modules.get(name)
        if module is None or _initialising(module):
            _hooks.setdefault(name, []).append(hook)
            if module is not None:
                # Its loader is already running and is not ours: no call comes when it ends.
                _late.add(name)
            _ensure_finder()
            return
    _run(name, module, [hook])


def pending() -> list[str]:
    with _lock:
        return sorted(_hooks)


def clear() -> None:
    """Forget every hook not yet run and take the finder out (tests)."""
    global _finder
    with _lock:
        _hooks.clear()
        _late.clear()
        if _finder is not None and _finder in sys.meta_path:
            sys.meta_path.remove(_finder)
        _finder = None


def _initialising(module: ModuleType) -> bool:
    spec = getattr(module, "__spec__", None)
    return bool(getattr(spec, "_initializing", False))


def _ensure_finder() -> None:
    global _finder
    if _finder is None:
        _finder = _Finder()
        sys.meta_path.insert(0, _finder)


def _take(name: str) -> list[Hook]:
    with _lock:
        return _hooks.pop(name, [])


def _run_late() -> None:
    """Hooks for modules that were mid-import when watched, once their import has ended."""
    with _lock:
        done = [n for n in _late if (m := sys.modules.get(n)) is None or not _initialising(m)]
        _late.difference_update(done)
    for name in done:
        module = sys.modules.get(name)
        hooks = _take(name)
        if module is not None and hooks:
            _run(name, module, hooks)


def _run(name: str, module: ModuleType, hooks: list[Hook]) -> None:
    for hook in hooks:
        with guard(f"import hook for {name}"):
            hook(module)


def _bind_to_parent(fullname: str, module: ModuleType) -> None:
    """Make ``package.sub`` reachable as an attribute now, as the import system does just after this
    loader returns, so a hook can write ``import package.sub`` and use ``package.sub``."""
    parent, _, child = fullname.rpartition(".")
    package = sys.modules.get(parent) if parent else None
    if package is not None and getattr(package, child, None) is not module:
        with guard(f"import hook for {fullname}"):
            setattr(package, child, module)


class _Finder:
    """Finds nothing itself: wraps the real loader of a watched module."""

    def __init__(self) -> None:
        self._busy = threading.local()

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if _late:
            _run_late()
        if fullname not in _hooks or getattr(self._busy, fullname, False):
            return None
        setattr(self._busy, fullname, True)
        try:
            spec = _find_elsewhere(self, fullname, path, target)
        finally:
            delattr(self._busy, fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _Loader(spec.loader, fullname)  # type: ignore[assignment]
        return spec


def _find_elsewhere(
    me: object, fullname: str, path: Sequence[str] | None, target: ModuleType | None
) -> importlib.machinery.ModuleSpec | None:
    for finder in list(sys.meta_path):
        if finder is me:
            continue
        find = getattr(finder, "find_spec", None)
        if find is None:
            continue
        spec: importlib.machinery.ModuleSpec | None = find(fullname, path, target)
        if spec is not None:
            return spec
    return None


class _Loader:
    """Delegates to the real loader, then runs the hooks for the module."""

    def __init__(self, loader: Any, fullname: str) -> None:
        self._loader = loader
        self._fullname = fullname

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        # The spec keeps our loader; hand the real one to loaders that look at spec.loader.
        spec.loader = self._loader
        try:
            module: ModuleType | None = self._loader.create_module(spec)
        finally:
            spec.loader = self  # type: ignore[assignment]
        return module

    def exec_module(self, module: ModuleType) -> None:
        spec = module.__spec__
        if spec is not None:
            spec.loader = self._loader  # so the module sees its real loader (resources, reload)
        module.__loader__ = self._loader
        self._loader.exec_module(module)
        loaded = sys.modules.get(self._fullname, module)
        _bind_to_parent(self._fullname, loaded)
        _run(self._fullname, loaded, _take(self._fullname))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)
