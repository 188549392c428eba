"""autotrace's own diagnostics: one logger tree, one stderr handler, throttled warnings.

`logging` is imported only when something is actually said, so a healthy start-up pays nothing for it.
Messages go to stderr as one line each, prefixed ``autotrace:``, whatever the app does with logging;
the level follows ``OTEL_LOG_LEVEL``.
"""

from __future__ import annotations

import sys
import threading
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    import logging
    from typing import Any

_LEVELS = {"debug": 10, "info": 20, "warn": 30, "warning": 30, "error": 40, "critical": 50}
_level = 20
_configured = False
_lock = threading.Lock()
_last_said: dict[str, float] = {}
_suppressed: dict[str, int] = {}


def set_level(name: str) -> None:
    """Set the threshold from an ``OTEL_LOG_LEVEL`` value (already validated by config)."""
    global _level
    _level = _LEVELS.get(name.lower(), 20)
    if _configured:
        logger().setLevel(_level)


def enabled_for(level: int) -> bool:
    return level >= _level


def _stderr_handler(logging: Any) -> Any:
    """A handler writing to whatever ``sys.stderr`` is when a line is written (an app or a test
    runner may replace it after our first message)."""

    class StderrHandler(logging.StreamHandler):  # type: ignore[misc]
        @property
        def stream(self) -> Any:
            return sys.stderr

        @stream.setter
        def stream(self, value: Any) -> None:
            pass

    return StderrHandler()


def logger(name: str = "autotrace") -> logging.Logger:
    """The ``autotrace`` logger (or a child), configured on first use."""
    import logging

    global _configured
    if not _configured:
        with _lock:
            if not _configured:
                root = logging.getLogger("autotrace")
                handler = _stderr_handler(logging)
                handler.setFormatter(logging.Formatter("autotrace: %(levelname)s: %(message)s"))
                root.addHandler(handler)
                root.setLevel(_level)
                # Our lines must not be doubled or reformatted by the app's root handlers.
                root.propagate = False
                _configured = True
    return logging.getLogger(name)


def warn(msg: str, *args: Any) -> None:
    if _level <= 30:
        logger().warning(msg, *args)


def debug(msg: str, *args: Any) -> None:
    if _level <= 10:
        logger().debug(msg, *args)


def info(msg: str, *args: Any) -> None:
    if _level <= 20:
        logger().info(msg, *args)


def warn_throttled(key: str, interval: float, msg: str, *args: Any, level: int = 30) -> bool:
    """Say ``msg`` at most once per ``interval`` seconds for ``key``; returns whether it was said.

    The number of times it was held back since the last line is appended, so nothing is hidden.
    """
    now = time.monotonic()
    with _lock:
        last = _last_said.get(key)
        if last is not None and now - last < interval:
            _suppressed[key] = _suppressed.get(key, 0) + 1
            return False
        _last_said[key] = now
        held = _suppressed.pop(key, 0)
    if held:
        msg += " (%d similar messages held back)"
        args = (*args, held)
    if _level <= level:
        logger().log(level, msg, *args)
    return True
