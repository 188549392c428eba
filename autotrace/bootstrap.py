"""Start-up in every traced process: read the configuration, arm the import hooks, nothing more.

``run()`` is called by the bootstrap ``sitecustomize`` at interpreter start-up. It never raises (a
failure is one warning line; the app runs untraced) and imports nothing heavy: the OpenTelemetry SDK
is built on first need, when the app imports the OpenTelemetry API or a library we instrument.
"""

from __future__ import annotations

import os
import threading

from autotrace import _agents, _errors, _log
from autotrace.config import PARENT_SERVICE_VARIABLE, Config

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import FrameType, ModuleType
    from typing import Any, Callable

    from autotrace.sdk import Tracing


class Agent:
    """One per process: the configuration and, once needed, the SDK."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._tracing: Tracing | None = None
        self._lock = threading.RLock()
        self._building = False
        self._deferred: list[Callable[[Tracing], None]] = []

    @property
    def built(self) -> Tracing | None:
        return self._tracing

    def tracing(self) -> Tracing:
        """The SDK objects, built on the first call (thread-safe; re-entrant calls get the same)."""
        tracing = self._tracing
        if tracing is not None:
            return tracing
        with self._lock:
            if self._tracing is None:
                if self._building:
                    raise RuntimeError("the SDK is being built (re-entrant call)")
                self._building = True
                try:
                    self._tracing = self._build()
                finally:
                    self._building = False
                self._run_deferred(self._tracing)
            return self._tracing

    def when_ready(self, callback: Callable[[Tracing], None]) -> None:
        """Call ``callback(tracing)`` now, building the SDK if needed; or, when this is an import made
        while the SDK is being built (the SDK imports libraries we instrument), right after the build.
        """
        with self._lock:
            if self._building:
                self._deferred.append(callback)
                return
        callback(self.tracing())

    def _run_deferred(self, tracing: Tracing) -> None:
        waiting, self._deferred = self._deferred, []
        for callback in waiting:
            with _errors.guard("deferred install"):
                callback(tracing)

    def _build(self) -> Tracing:
        from opentelemetry import trace

        from autotrace import sdk

        tracing, problems = sdk.build(self.config)
        for problem in problems:
            _log.warn("%s", problem)
        trace.set_tracer_provider(tracing.provider)
        sdk.install_exit_handler(tracing)
        _log.debug("SDK ready: exporters=%s sampler=%s", self.config.exporters, self.config.sampler)
        return tracing


_agent: Agent | None = None
_ran = False


def agent() -> Agent | None:
    """The process's agent, or None when autotrace is not active here."""
    return _agent


def run() -> None:
    """Bootstrap once per process. Never raises."""
    global _ran
    if _ran:
        return
    _ran = True
    with _errors.guard("bootstrap (this process may run untraced)"):
        _start(Config.from_env())


def _start(config: Config) -> None:
    global _agent
    if not config.enabled:
        return
    _log.set_level(config.log_level)
    _errors.set_strict(config.strict or _errors.is_strict())
    for problem in config.problems:
        _log.warn("%s", problem)
    _sanitize_propagators_variable(config)
    if not config.service_name_explicit and config.service_name != "python":
        os.environ[PARENT_SERVICE_VARIABLE] = config.service_name  # for spawned workers: see config
    other = other_agent()
    if other:
        _stand_down(other)
        return
    _agent = Agent(config)
    _arm(_agent)
    _install_sigterm(_agent)


def _sanitize_propagators_variable(config: Config) -> None:
    """Keep only the propagator names we know in OTEL_PROPAGATORS.

    ``opentelemetry.propagate`` raises at import on a name it cannot load, which would break the app the
    first time it (or a library) imports it; we warned about the name already, and drop it, as we said.
    """
    value = os.environ.get("OTEL_PROPAGATORS")
    if value is not None and any(p.variable == "OTEL_PROPAGATORS" for p in config.problems):
        os.environ["OTEL_PROPAGATORS"] = ",".join(config.propagators)


def other_agent(env: dict[str, str] | None = None) -> str | None:
    """The name of another tracing agent set up in this process (or in ``env``), if any."""
    pythonpath = (env if env is not None else os.environ).get("PYTHONPATH", "")
    return _agents.other_on_path(pythonpath) or _agents.other_in_process()


def _stand_down(other: str) -> None:
    _log.warn("%s is already active in this process; autotrace stands down", other)
    # Children inherit the other agent's folder on PYTHONPATH, so they would only stand down again and
    # repeat the line: take ours off for them.
    pythonpath = os.environ.get("PYTHONPATH", "")
    if _agents.other_on_path(pythonpath):
        os.environ["PYTHONPATH"] = _agents.without_ours(pythonpath, _agents.bootstrap_folder())


def _arm(agent: Agent) -> None:
    from autotrace import _hooks, _instruments
    from autotrace.instrumentation import REGISTRY

    # Spans the app makes through the OpenTelemetry API reach our SDK, and the API's global
    # propagator is ours, as soon as the app imports them.
    _hooks.when_imported("opentelemetry.trace", lambda _: agent.when_ready(lambda t: None))
    _hooks.when_imported("opentelemetry.propagate", lambda m: agent.when_ready(_propagator_setter(m)))
    _instruments.arm(REGISTRY, agent.config.disabled_instrumentations, agent.when_ready, agent.config)
    _hooks.when_imported("multiprocessing.util", lambda util: _flush_multiprocessing_children(agent, util))


def _flush_multiprocessing_children(agent: Agent, util: ModuleType) -> None:
    """multiprocessing ends its forked children with os._exit, which skips atexit: flush them too.

    Its own exit function runs the "finalizers" registered in the child, so each child registers one.
    """

    def in_child(agent: Agent) -> None:
        util.Finalize(None, _flush_now, args=(agent,), exitpriority=-100)

    util.register_after_fork(agent, in_child)


def _flush_now(agent: Agent) -> None:
    tracing = agent.built
    if tracing is not None:
        from autotrace import sdk

        sdk.flush_at_exit(tracing)


def _propagator_setter(propagate: ModuleType) -> Callable[[Tracing], None]:
    def set_global(tracing: Tracing) -> None:
        propagate.set_global_textmap(tracing.propagator)

    return set_global


def _install_sigterm(agent: Agent) -> None:
    """Flush on SIGTERM when nothing else handles it, then die of SIGTERM exactly as we would have.

    Only the default disposition is replaced: servers with their own handler (gunicorn, uvicorn)
    exit through their own path, and the atexit flush.
    """
    import signal

    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def on_sigterm(signum: int, frame: FrameType | None) -> Any:
        tracing = agent.built
        if tracing is not None:
            from autotrace import sdk

            sdk.flush_at_exit(tracing)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_sigterm)
