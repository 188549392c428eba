"""The OpenTelemetry SDK set-up: resource, sampler, span limits, processors, propagator, exit handling.

Built once per process, on first need (the app imports the OpenTelemetry API or a library we
instrument), never at interpreter start-up: that keeps ``python -c pass`` cheap under autotrace.
"""

from __future__ import annotations

import atexit
import os
import platform
import socket
import sys
import threading
import weakref
from typing import Any

from opentelemetry import trace
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, TracerProvider

from autotrace import _log
from autotrace._errors import guard
from autotrace._version import __version__
from autotrace.config import Config
from autotrace.export import BatchProcessor, make_transport_factory

SCOPE = "autotrace"


class Tracing:
    """What instrumentations are given: the provider, its propagator, and our processors.

    The propagator is made on first use: ``autotrace.propagation`` is also loaded by
    ``opentelemetry.propagate`` (our b3/jaeger entry points), and that import can be what makes the
    SDK build; building it then must not need the module that is still being imported.
    """

    def __init__(self, config: Config, provider: TracerProvider, processors: list[BatchProcessor]) -> None:
        self.config = config
        self.provider = provider
        self.processors = processors
        self._propagator: TextMapPropagator | None = None

    @property
    def propagator(self) -> TextMapPropagator:
        propagator = self._propagator
        if propagator is None:
            from autotrace import propagation

            propagator, unknown = propagation.build_propagator(list(self.config.propagators))
            for name in unknown:
                _log.warn("OTEL_PROPAGATORS: unknown propagator %r ignored", name)
            self._propagator = propagator
        return propagator

    def tracer(self, name: str) -> trace.Tracer:
        return self.provider.get_tracer(f"{SCOPE}.{name}", __version__)

    def flush(self, timeout_s: float) -> bool:
        return all([p.flush(timeout_s) for p in self.processors])

    def shutdown(self, timeout_s: float) -> bool:
        return all([p.close(timeout_s) for p in self.processors])


def build(config: Config) -> tuple[Tracing, list[str]]:
    """Make the SDK objects for ``config``; returns them and any problems found on the way."""
    from autotrace import sampling

    problems: list[str] = []
    rules, rule_errors = sampling.parse_rules(config.sampling_rules) if config.sampling_rules else ([], [])
    problems += [f"AUTOTRACE_SAMPLING_RULES: {e}" for e in rule_errors]
    arg = None if config.sampler_arg is None else str(config.sampler_arg)
    sampler, sampler_errors = sampling.build_sampler(config.sampler, arg, rules)
    problems += sampler_errors
    _quiet_truncation_warnings()
    provider = _fork_safe_provider_class()(
        sampler=sampler,
        resource=make_resource(config),
        shutdown_on_exit=False,  # we flush at exit ourselves, within a bound
        span_limits=make_span_limits(config),
    )
    _refresh_pid_after_fork(provider)
    processors = []
    for name in config.exporters:
        if name == "none":
            continue
        processor = BatchProcessor(make_transport_factory(name, config.otlp), config.batch, name=name)
        provider.add_span_processor(processor)
        processors.append(processor)
    return Tracing(config, provider, processors), problems


_provider_class: type[TracerProvider] | None = None


def _quiet_truncation_warnings() -> None:
    """Cutting a value at the attribute length limit is the documented behaviour, not a problem: the
    SDK's one warning per cut value would let any client add a line to the app's logs per request
    (a 16 KiB header). Held back, unless OTEL_LOG_LEVEL=debug asks for everything."""
    import logging

    class DropTruncation(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return _log.enabled_for(10) or "exceeds max length" not in str(record.msg)

    logger = logging.getLogger("opentelemetry.attributes")
    if not any(type(f).__name__ == "DropTruncation" for f in logger.filters):
        logger.addFilter(DropTruncation())


def _fork_safe_provider_class() -> type[TracerProvider]:
    """The SDK's provider, with an after-fork step that cannot hang the child.

    The SDK's own step (1.3x and later: ``TracerProvider._handle_fork``) runs the resource detectors on a
    thread pool in the child. When ``concurrent.futures.thread`` was first imported after the provider
    was made (Django does it, through asgiref, in every ``gunicorn --preload`` master), that module's
    global lock is still held at that moment, because its own after-fork hook, registered later, runs
    later: the child blocks for ever. Ours makes a fresh lock and refreshes the process ids in place.
    """
    global _provider_class
    if _provider_class is None:

        class ForkSafeTracerProvider(TracerProvider):
            def _handle_fork(self) -> None:
                self._tracers_lock = threading.Lock()
                with guard("resource update after fork"):
                    _refresh_pid(self.resource)

        _provider_class = ForkSafeTracerProvider
    return _provider_class


def _refresh_pid(resource: Any) -> None:
    attrs = dict(resource.attributes)
    attrs["process.pid"] = os.getpid()
    attrs["process.parent_pid"] = os.getppid()
    resource.__init__(attrs, resource.schema_url)


def _refresh_pid_after_fork(provider: TracerProvider) -> None:
    """Pre-fork servers: each worker's spans carry the worker's own ``process.pid``.

    The resource is updated in place, so every tracer already handed out sees it. An SDK whose provider
    has its own after-fork step calls ours (above); for older ones a fork hook does it.
    """
    if not hasattr(os, "register_at_fork") or hasattr(TracerProvider, "_handle_fork"):
        return
    ref = weakref.ref(provider)

    def after_in_child() -> None:
        live = ref()
        if live is not None:
            with guard("resource update after fork"):
                _refresh_pid(live.resource)

    os.register_at_fork(after_in_child=after_in_child)


def make_span_limits(config: Config) -> SpanLimits:
    def value(v: int | None) -> int:
        return SpanLimits.UNSET if v is None else v

    lim = config.limits
    return SpanLimits(
        max_span_attributes=value(lim.attribute_count),
        max_attributes=value(lim.attribute_count),
        max_events=value(lim.event_count),
        max_links=value(lim.link_count),
        max_event_attributes=value(lim.event_attribute_count),
        max_link_attributes=value(lim.link_attribute_count),
        max_attribute_length=value(lim.attribute_value_length),
        max_span_attribute_length=value(lim.attribute_value_length),
    )


def make_resource(config: Config) -> Resource:
    """Service, telemetry, process, host and runtime attributes; OTEL_RESOURCE_ATTRIBUTES wins."""
    from opentelemetry.version import __version__ as sdk_version

    attrs: dict[str, Any] = {
        "telemetry.sdk.name": "opentelemetry",
        "telemetry.sdk.language": "python",
        "telemetry.sdk.version": sdk_version,
        "telemetry.distro.name": "autotrace",
        "telemetry.distro.version": __version__,
        "process.pid": os.getpid(),
        "process.parent_pid": os.getppid(),
        "process.executable.path": sys.executable,
        "process.executable.name": os.path.basename(sys.executable),
        "process.runtime.name": sys.implementation.name,
        "process.runtime.version": platform.python_version(),
        "process.runtime.description": sys.version,
        "host.name": socket.gethostname(),
        "host.arch": platform.machine(),
        "os.type": sys.platform,
    }
    attrs.update(dict(config.resource_attributes))
    attrs["service.name"] = config.service_name
    return Resource(attrs)


# --------------------------------------------------------------------------------------------------
# Exit: flush within a bound on normal exit, sys.exit, SIGINT (KeyboardInterrupt) and SIGTERM.

_exit_lock = threading.Lock()
_exiting = False


def install_exit_handler(tracing: Tracing) -> None:
    atexit.register(flush_at_exit, tracing)


def shutdown_bound(config: Config) -> float:
    """Exit waits at most AUTOTRACE_SHUTDOWN_TIMEOUT, and never longer than OTEL_BSP_EXPORT_TIMEOUT."""
    return min(config.shutdown_timeout_s, config.batch.export_timeout_s)


def flush_at_exit(tracing: Tracing) -> None:
    """Flush and stop export, once, within the shutdown bound."""
    global _exiting
    with _exit_lock:
        if _exiting:
            return
        _exiting = True
    with guard("flush at exit"):
        bound = shutdown_bound(tracing.config)
        if not tracing.shutdown(bound):
            left = sum(p.stats()["queued"] for p in tracing.processors)
            errors = [p.last_error for p in tracing.processors if p.last_error]
            _log.warn(
                "could not export all spans before exit (waited %dms, the shutdown bound; %d spans lost)%s",
                int(bound * 1000),
                left,
                f"; last error: {errors[0]}" if errors else "",
            )
