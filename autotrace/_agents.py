"""Who traces a command or a process already: another agent, or autotrace itself.

One agent per process: two would patch the same libraries twice and send every operation twice. The
launcher asks before it runs a command (it sees the program and the ``PYTHONPATH`` it hands on); the
bootstrap asks in its own process (another agent's ``sitecustomize`` may have chained to ours).

The launcher imports this module on every run, so it uses nothing but ``os`` and ``sys``.
"""

from __future__ import annotations

import os
import sys

AUTOTRACE = "autotrace"

# Launchers that set up their own agent in the command they run (matched on the program's file name).
OTHER_LAUNCHERS = ("opentelemetry-instrument", "ddtrace-run")

# The folders those launchers put in front of PYTHONPATH, each holding the agent's sitecustomize.
_OTHER_FOLDERS = (
    ("opentelemetry-instrument", os.path.join("opentelemetry", "instrumentation", "auto_instrumentation")),
    ("ddtrace-run", os.path.join("ddtrace", "bootstrap")),
)
# Modules that betray an agent set up in this process without its folder on PYTHONPATH. For ddtrace it is
# the preload that ddtrace-run and `import ddtrace.auto` run: `import ddtrace` alone (a library's optional
# integration, ddtrace's pytest plugin) sets nothing up.
_OTHER_MODULES = (
    ("opentelemetry-instrument", "opentelemetry.instrumentation.auto_instrumentation"),
    ("ddtrace", "ddtrace.bootstrap.preload"),
)
# Where a wheel ships our bootstrap; recognised even when it is another installation's.
_SHIPPED_FOLDER = os.path.join("autotrace", "_bootstrap")


def bootstrap_folder() -> str:
    """The folder holding our bootstrap ``sitecustomize.py``.

    In a wheel it is ``autotrace/_bootstrap``; in an editable install or a source checkout, the
    repository's ``sitecustomize/`` folder it is built from.
    """
    package = os.path.dirname(os.path.realpath(__file__))
    shipped = os.path.join(package, "_bootstrap")
    if os.path.isfile(os.path.join(shipped, "sitecustomize.py")):
        return shipped
    return os.path.join(os.path.dirname(package), "sitecustomize")


def launcher_of(program: str) -> str | None:
    """The agent ``program`` sets up when run: another agent's launcher name, ``"autotrace"``, or None."""
    name = os.path.basename(program)
    if name.lower().endswith(".exe"):
        name = name[: -len(".exe")]
    return name if name in (*OTHER_LAUNCHERS, AUTOTRACE) else None


def other_on_path(pythonpath: str) -> str | None:
    """The other agent whose bootstrap folder is on ``pythonpath``, if any."""
    entries = _entries(pythonpath)
    for name, fragment in _OTHER_FOLDERS:
        if any(entry.endswith(fragment) for entry in entries):
            return name
    return None


def other_in_process() -> str | None:
    """The other agent imported into this process, if any."""
    for name, module in _OTHER_MODULES:
        if module in sys.modules:
            return name
    return None


def is_ours(entry: str, own: str) -> bool:
    """Whether a PYTHONPATH entry is our bootstrap folder (``own``, or another installation's)."""
    entry = entry.rstrip("/\\")
    return entry.endswith(_SHIPPED_FOLDER) or os.path.realpath(entry) == os.path.realpath(own)


def ours_on_path(pythonpath: str, own: str) -> bool:
    return any(is_ours(entry, own) for entry in _entries(pythonpath))


def without_ours(pythonpath: str, own: str) -> str:
    """``pythonpath`` without our bootstrap folder, everything else kept in order."""
    return os.pathsep.join(e for e in pythonpath.split(os.pathsep) if e and not is_ours(e, own))


def _entries(pythonpath: str) -> list[str]:
    return [entry.rstrip("/\\") for entry in pythonpath.split(os.pathsep) if entry]
