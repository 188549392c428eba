"""Patching: wrap an attribute of a class or module, remember the original, restore it exactly.

Wrappers are ``wrapt`` function wrappers (they keep signatures, descriptors and introspection), marked
with the owner that installed them, so installing twice wraps once and ``unwrap_all(owner)`` undoes
exactly what that owner did. Nothing is written onto foreign modules but the wrapped attributes.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]

_INHERITED = object()
_originals: dict[str, list[tuple[Any, str, Any]]] = {}
_lock = threading.Lock()


def _marked_class() -> type:
    import wrapt

    class AutotraceWrapper(wrapt.FunctionWrapper):  # type: ignore[misc,type-arg]
        """A FunctionWrapper that knows which instrumentation installed it."""

        __slots__ = ()

    return AutotraceWrapper


_wrapper_class: type | None = None


def wrap(owner: str, target: Any, name: str, wrapper: Wrapper) -> bool:
    """Replace ``target.name`` with ``wrapper`` around it; returns False if ``owner`` already did."""
    global _wrapper_class
    if _wrapper_class is None:
        _wrapper_class = _marked_class()
    with _lock:
        # On a class, take the raw attribute (a classmethod stays a classmethod); an inherited one is
        # wrapped on this class and, on restore, deleted so the base's shows through again.
        own = target.__dict__.get(name, _INHERITED) if isinstance(target, type) else getattr(target, name)
        current = getattr(target, name) if own is _INHERITED else own
        if is_wrapped_by(current, owner):
            return False
        wrapped = _wrapper_class(current, wrapper)
        wrapped._self_autotrace_owner = owner
        setattr(target, name, wrapped)
        _originals.setdefault(owner, []).append((target, name, own))
    return True


def is_wrapped_by(obj: Any, owner: str) -> bool:
    return getattr(obj, "_self_autotrace_owner", None) == owner


def unwrap_all(owner: str) -> int:
    """Restore everything ``owner`` wrapped, newest first; returns how many attributes were restored."""
    with _lock:
        entries = _originals.pop(owner, [])
    for target, name, original in reversed(entries):
        if original is _INHERITED:
            delattr(target, name)
        else:
            setattr(target, name, original)
    return len(entries)


def wrapped_by(owner: str) -> list[str]:
    with _lock:
        return [f"{_qualname(t)}.{n}" for t, n, _ in _originals.get(owner, [])]


def patched(owner: str) -> list[tuple[Any, str]]:
    """(target, attribute) pairs ``owner`` has wrapped, oldest first."""
    with _lock:
        return [(t, n) for t, n, _ in _originals.get(owner, [])]


def _qualname(obj: Any) -> str:
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
    return str(name or type(obj).__name__)
