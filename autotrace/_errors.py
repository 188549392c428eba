"""The one place where autotrace's own errors are contained.

Every hook and wrapper runs our code inside ``guard``. An error in *our* code is logged once per site
(then counted), never reaches the app, and disables nothing else. The app's own call never runs inside
a guard, so its exceptions propagate unchanged.

In strict mode (``AUTOTRACE_STRICT=true``, set by the test suite) guarded errors are re-raised, so a
bug in autotrace fails the tests instead of hiding.
"""

from __future__ import annotations

import os
import threading

from autotrace import _log

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import TracebackType

_strict = os.environ.get("AUTOTRACE_STRICT", "").strip().lower() == "true"
_counts: dict[str, int] = {}
_lock = threading.Lock()


def set_strict(value: bool) -> None:
    global _strict
    _strict = value


def is_strict() -> bool:
    return _strict


def error_counts() -> dict[str, int]:
    """Internal errors seen so far, by site (for ``status()`` and ``doctor``)."""
    with _lock:
        return dict(_counts)


def report(site: str, exc: BaseException) -> None:
    """Count an internal error at ``site`` and log it the first time it is seen there."""
    with _lock:
        n = _counts.get(site, 0) + 1
        _counts[site] = n
    if n == 1:
        _log.logger().warning(
            "internal error in %s (the app is unaffected; further errors here are counted): %r",
            site,
            exc,
            exc_info=_log.enabled_for(10),
        )


class guard:
    """Context manager: ``with guard("psycopg.execute"): our_code()``.

    Swallows ``Exception`` (never ``BaseException``: KeyboardInterrupt and SystemExit belong to the app).
    """

    __slots__ = ("site",)

    def __init__(self, site: str) -> None:
        self.site = site

    def __enter__(self) -> guard:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if exc is None or not isinstance(exc, Exception):
            return False
        report(self.site, exc)
        return not _strict
