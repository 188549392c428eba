"""autotrace: zero-code distributed tracing for Python.

Most users never import this package: ``autotrace python app.py`` does everything. The few functions
here are for apps that want to start tracing themselves, or to ask what autotrace is doing.
"""

from __future__ import annotations

from autotrace._version import __version__

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["__version__", "configure", "flush", "status"]


def configure() -> None:
    """Start autotrace in this process, as the launcher would (once; later calls do nothing).

    For apps started without ``autotrace`` or its bootstrap folder on PYTHONPATH. Call it before
    importing the libraries to trace; libraries imported earlier are patched at once. Never raises.
    """
    from autotrace import bootstrap

    bootstrap.run()


def flush(timeout: float = 5.0) -> bool:
    """Export every span ended so far, waiting at most ``timeout`` seconds. True when all were sent."""
    from autotrace import bootstrap

    agent = bootstrap.agent()
    tracing = agent.built if agent is not None else None
    return True if tracing is None else tracing.flush(timeout)


def status() -> dict[str, Any]:
    """What autotrace is doing in this process: active or not, instrumentations, export counters."""
    from autotrace import _errors, _instruments, bootstrap

    agent = bootstrap.agent()
    tracing = agent.built if agent is not None else None
    return {
        "active": agent is not None,
        "sdk_ready": tracing is not None,
        "service_name": agent.config.service_name if agent is not None else None,
        "instrumentations": {
            name: {"state": o.state, "detail": o.detail, "version": o.version}
            for name, o in _instruments.status().items()
        },
        "export": {p.name: p.stats() for p in tracing.processors} if tracing is not None else {},
        "internal_errors": _errors.error_counts(),
    }
