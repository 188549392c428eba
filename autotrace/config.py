"""Configuration: the one module that reads the environment.

``Config.from_env(mapping)`` turns the standard ``OTEL_*`` variables, plus ``AUTOTRACE_*`` for what the
standard lacks, into a frozen value. It never raises: a value it cannot use is reported in
``Config.problems`` (variable, value, what was used instead) and the default is used, so one typo never
switches tracing off. Every variable is listed in docs/configuration.md.

This module runs at interpreter start-up in every traced process: standard library only, nothing heavy.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing is not imported at start-up: it costs more than all of autotrace
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, Callable, TypeVar

    T = TypeVar("T")

SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
    "autotrace_ratelimiting",
    "parentbased_autotrace_ratelimiting",
)
PROPAGATORS = ("tracecontext", "baggage", "b3", "b3multi", "jaeger", "none")
EXPORTERS = ("otlp", "console", "none")
PROTOCOLS = ("http/protobuf", "http/json", "grpc")
COMPRESSIONS = ("gzip", "none")
LOG_LEVELS = ("debug", "info", "warn", "warning", "error", "critical")

DEFAULT_HTTP_ENDPOINT = "http://localhost:4318"
DEFAULT_GRPC_ENDPOINT = "http://localhost:4317"
# Values of these variables may carry credentials: never echo them in a warning.
SECRET_VARIABLES = frozenset({"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"})

# Command-line programs that serve an app named by their first `module:attr` argument; the service
# name is derived from that module when OTEL_SERVICE_NAME is unset (`uvicorn gateway:app` -> gateway).
APP_SERVERS = frozenset(
    {"uvicorn", "gunicorn", "hypercorn", "waitress-serve", "daphne", "granian", "uwsgi", "celery"}
)


class _Record:
    """A frozen value with keyword construction (``dataclasses`` is too slow to import at start-up)."""

    __slots__ = ()
    _defaults: dict[str, Any] = {}

    def __init__(self, **values: Any) -> None:
        unknown = set(values) - set(self._defaults)
        if unknown:
            raise TypeError(f"unknown fields {sorted(unknown)}")
        for name, default in self._defaults.items():
            object.__setattr__(self, name, values.get(name, default))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen")

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._items() == other._items()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self._items())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self._items())})"

    def _items(self) -> tuple[tuple[str, Any], ...]:
        return tuple((name, getattr(self, name)) for name in self._defaults)

    def replace(self, **values: Any) -> Any:
        return type(self)(**{**dict(self._items()), **values})


class Problem(_Record):
    """A variable whose value could not be used."""

    __slots__ = ("reason", "value", "variable")
    _defaults = {"variable": "", "value": "", "reason": ""}
    variable: str
    value: str
    reason: str

    def __str__(self) -> str:
        shown = "(hidden: may hold credentials)" if self.variable in SECRET_VARIABLES else repr(self.value)
        return f"{self.variable}={shown}: {self.reason}"


class OTLPConfig(_Record):
    __slots__ = (
        "certificate",
        "client_certificate",
        "client_key",
        "compression",
        "endpoint",
        "headers",
        "insecure",
        "protocol",
        "timeout_s",
    )
    _defaults = {
        "protocol": "http/protobuf",
        "endpoint": DEFAULT_HTTP_ENDPOINT + "/v1/traces",
        "headers": (),
        "timeout_s": 10.0,
        "compression": "none",
        "certificate": None,
        "client_certificate": None,
        "client_key": None,
        "insecure": None,
    }
    protocol: str
    endpoint: str
    headers: tuple[tuple[str, str], ...]
    timeout_s: float
    compression: str
    certificate: str | None
    client_certificate: str | None
    client_key: str | None
    insecure: bool | None


DEFAULT_EXPORT_BUFFER = 32 * 1024 * 1024
# The standard leaves attribute values unbounded; a header or URL of megabytes must not become a span.
DEFAULT_ATTRIBUTE_VALUE_LENGTH = 8192


class BatchConfig(_Record):
    __slots__ = (
        "buffer_bytes",
        "export_timeout_s",
        "max_export_batch_size",
        "max_queue_size",
        "schedule_delay_s",
    )
    _defaults = {
        "schedule_delay_s": 5.0,
        "export_timeout_s": 30.0,
        "max_queue_size": 2048,
        "max_export_batch_size": 512,
        "buffer_bytes": DEFAULT_EXPORT_BUFFER,
    }
    schedule_delay_s: float
    export_timeout_s: float
    max_queue_size: int
    max_export_batch_size: int
    buffer_bytes: int  # encoded batches kept while the collector cannot take them


class LimitsConfig(_Record):
    __slots__ = (
        "attribute_count",
        "attribute_value_length",
        "event_attribute_count",
        "event_count",
        "link_attribute_count",
        "link_count",
    )
    _defaults = {
        "attribute_count": 128,
        "attribute_value_length": DEFAULT_ATTRIBUTE_VALUE_LENGTH,
        "event_count": 128,
        "link_count": 128,
        "event_attribute_count": 128,
        "link_attribute_count": 128,
    }
    attribute_count: int | None
    attribute_value_length: int | None
    event_count: int | None
    link_count: int | None
    event_attribute_count: int | None
    link_attribute_count: int | None


class HttpConfig(_Record):
    """What server (and later client) HTTP spans record beyond the standard attributes."""

    __slots__ = (
        "baggage_targets",
        "capture_client_request_headers",
        "capture_client_response_headers",
        "capture_request_headers",
        "capture_response_headers",
        "excluded_urls",
        "propagation_targets",
        "redact_query_params",
        "sanitize_fields",
        "trace_response",
    )
    _defaults = {
        "excluded_urls": (),
        "capture_request_headers": (),
        "capture_response_headers": (),
        "capture_client_request_headers": (),
        "capture_client_response_headers": (),
        "sanitize_fields": frozenset(),
        "redact_query_params": frozenset(),
        "trace_response": False,
        "propagation_targets": None,
        "baggage_targets": (),
    }
    excluded_urls: tuple[str, ...]
    capture_request_headers: tuple[str, ...]
    capture_response_headers: tuple[str, ...]
    capture_client_request_headers: tuple[str, ...]
    capture_client_response_headers: tuple[str, ...]
    sanitize_fields: frozenset[str]
    redact_query_params: frozenset[str]
    trace_response: bool
    propagation_targets: tuple[str, ...] | None  # host globs that get traceparent; None: every host
    baggage_targets: tuple[str, ...]  # host globs that get baggage; empty: none


class DbConfig(_Record):
    """What database and cache spans record of the statement, and what they send with it."""

    __slots__ = ("connect_spans", "sqlcommenter", "statement")
    _defaults = {"statement": "sanitized", "sqlcommenter": False, "connect_spans": False}
    statement: str  # "sanitized", "raw" or "off"
    sqlcommenter: bool
    connect_spans: bool


DB_STATEMENT_MODES = ("sanitized", "raw", "off")


class Config(_Record):
    __slots__ = (
        "batch",
        "db",
        "disabled_instrumentations",
        "enabled",
        "exporters",
        "http",
        "limits",
        "log_correlation",
        "log_format",
        "log_level",
        "otlp",
        "problems",
        "propagators",
        "resource_attributes",
        "sampler",
        "sampler_arg",
        "sampling_rules",
        "service_name",
        "service_name_explicit",
        "shutdown_timeout_s",
        "strict",
    )
    _defaults = {
        "enabled": True,
        "service_name": "python",
        "service_name_explicit": False,
        "resource_attributes": (),
        "exporters": ("otlp",),
        "otlp": OTLPConfig(),
        "sampler": "parentbased_always_on",
        "sampler_arg": None,
        "sampling_rules": "",
        "propagators": ("tracecontext", "baggage"),
        "batch": BatchConfig(),
        "limits": LimitsConfig(),
        "http": HttpConfig(),
        "db": DbConfig(),
        "log_level": "info",
        "log_correlation": True,
        "log_format": "",
        "disabled_instrumentations": frozenset(),
        "shutdown_timeout_s": 5.0,
        "strict": False,
        "problems": (),
    }
    enabled: bool
    service_name: str
    service_name_explicit: bool
    resource_attributes: tuple[tuple[str, str], ...]
    exporters: tuple[str, ...]
    otlp: OTLPConfig
    sampler: str
    sampler_arg: float | None
    sampling_rules: str
    propagators: tuple[str, ...]
    batch: BatchConfig
    limits: LimitsConfig
    http: HttpConfig
    db: DbConfig
    log_level: str
    log_correlation: bool  # log records carry trace_id, span_id, trace_flags, service_name
    log_format: str  # the fields to inject into the root handlers' format, or ''
    disabled_instrumentations: frozenset[str]
    shutdown_timeout_s: float
    strict: bool
    problems: tuple[Problem, ...]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, argv: list[str] | None = None) -> Config:
        """Read the configuration from ``env`` (default ``os.environ``); never raises."""
        reader = _Reader(os.environ if env is None else env)
        return _build(reader, _program_argv() if argv is None else argv)


# --------------------------------------------------------------------------------------------------
# Reading values


class _Reader:
    """Reads typed values from a mapping, recording a Problem for each unusable one."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[Problem] = []

    def raw(self, name: str) -> str | None:
        value = self.env.get(name)
        if value is None or not value.strip():
            return None  # the specification treats empty values as unset
        return value.strip()

    def first(self, *names: str) -> tuple[str, str] | None:
        for name in names:
            value = self.raw(name)
            if value is not None:
                return name, value
        return None

    def bad(self, name: str, value: str, reason: str) -> None:
        self.problems.append(Problem(variable=name, value=value, reason=reason))

    def parse(self, names: tuple[str, ...], default: T, conv: Callable[[str], T], what: str) -> T:
        found = self.first(*names)
        if found is None:
            return default
        name, value = found
        try:
            return conv(value)
        except ValueError as exc:
            # Our converters explain themselves; Python's own messages would only repeat the value.
            detail = f" ({exc})" if isinstance(exc, BadValue) and str(exc) else ""
            if name in SECRET_VARIABLES:
                detail = ""
            self.bad(name, value, f"expected {what}{detail}; using the default ({_show(default)})")
            return default

    def boolean(self, name: str, default: bool) -> bool:
        return self.parse((name,), default, _to_bool, "true or false")

    def choice(self, names: tuple[str, ...], default: str, choices: tuple[str, ...]) -> str:
        return self.parse(names, default, lambda v: _to_choice(v, choices), "one of " + ", ".join(choices))


class BadValue(ValueError):
    """A value our converters reject, with a reason worth showing."""


def _show(default: object) -> str:
    if isinstance(default, float):
        return f"{default * 1000:g}ms"  # every float default here is a duration kept in seconds
    if default is None:
        return "none"
    if isinstance(default, tuple):
        return "empty" if not default else ", ".join(map(str, default))
    return str(default)


def _to_bool(value: str) -> bool:
    low = value.lower()
    if low in ("true", "1", "yes", "on"):
        return True
    if low in ("false", "0", "no", "off"):
        return False
    raise BadValue("")


def _to_choice(value: str, choices: tuple[str, ...]) -> str:
    low = value.lower()
    if low not in choices:
        raise BadValue("")
    return low


_NO_PAIRS: tuple[tuple[str, str], ...] = ()


def _non_negative_int(value: str) -> int:
    number = int(value)
    if number < 0:
        raise BadValue("must not be negative")
    return number


def _positive_int(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise BadValue("must be positive")
    return number


def _millis(value: str) -> float:
    number = float(value)
    if not number >= 0 or number == float("inf"):
        raise BadValue("must be a finite number of milliseconds, not negative")
    return number / 1000.0


def _ratio(value: str) -> float:
    number = float(value)
    if number != number:
        raise BadValue("not a number")
    if not number >= 0.0:
        raise BadValue("must not be negative")
    return number


def _names(value: str) -> list[str]:
    return [part.strip().lower() for part in value.split(",") if part.strip()]


def _key_values(value: str) -> tuple[tuple[str, str], ...]:
    """W3C-baggage-like ``key=value,key2=value2`` with percent-encoded values (the OTEL_* list format)."""
    pairs = []
    for member in value.split(","):
        if not member.strip():
            continue
        key, sep, val = member.partition("=")
        key = key.strip()
        if not sep or not key or any(c in key for c in ' \t"(),/:;<=>?@[\\]{}'):
            raise BadValue(f"malformed entry {member.strip()!r}")
        from urllib.parse import unquote

        pairs.append((key, unquote(val.strip(), errors="strict")))
    return tuple(pairs)


# --------------------------------------------------------------------------------------------------
# Building the configuration


def _build(r: _Reader, argv: list[str]) -> Config:
    enabled = not r.boolean("OTEL_SDK_DISABLED", False) and r.boolean("AUTOTRACE_ENABLED", True)
    service, explicit = _service_name(r, argv)
    return Config(
        enabled=enabled,
        service_name=service,
        service_name_explicit=explicit,
        resource_attributes=_resource_attributes(r),
        exporters=_exporters(r),
        otlp=_otlp(r),
        sampler=r.choice(("OTEL_TRACES_SAMPLER",), "parentbased_always_on", SAMPLERS),
        sampler_arg=_sampler_arg(r),
        sampling_rules=r.raw("AUTOTRACE_SAMPLING_RULES") or "",
        propagators=_propagators(r),
        batch=_batch(r),
        limits=_limits(r),
        http=_http(r),
        db=DbConfig(
            statement=r.choice(("AUTOTRACE_DB_STATEMENT",), "sanitized", DB_STATEMENT_MODES),
            sqlcommenter=r.boolean("AUTOTRACE_SQLCOMMENTER", False),
            connect_spans=r.boolean("AUTOTRACE_DB_CONNECT_SPANS", False),
        ),
        log_level=r.choice(("OTEL_LOG_LEVEL",), "info", LOG_LEVELS),
        log_correlation=r.boolean("AUTOTRACE_LOG_CORRELATION", True),
        log_format=_log_format(r),
        disabled_instrumentations=frozenset(
            _names(r.raw("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS") or "")
            + _names(r.raw("AUTOTRACE_DISABLED_INSTRUMENTATIONS") or "")
        ),
        shutdown_timeout_s=r.parse(("AUTOTRACE_SHUTDOWN_TIMEOUT",), 5.0, _millis, "milliseconds"),
        strict=r.boolean("AUTOTRACE_STRICT", False),
        problems=tuple(r.problems),
    )


def _http(r: _Reader) -> HttpConfig:
    def listed(*names: str) -> tuple[str, ...]:
        return tuple(dict.fromkeys(n for name in names for n in _names(r.raw(name) or "")))

    excluded = tuple(
        dict.fromkeys(
            part.strip()
            for name in ("OTEL_PYTHON_EXCLUDED_URLS", "AUTOTRACE_EXCLUDED_URLS")
            for part in (r.raw(name) or "").split(",")
            if part.strip()
        )
    )
    return HttpConfig(
        excluded_urls=excluded,
        capture_request_headers=listed("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST"),
        capture_response_headers=listed("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_RESPONSE"),
        sanitize_fields=frozenset(
            listed("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS", "AUTOTRACE_SANITIZE_FIELDS")
        ),
        trace_response=r.boolean("AUTOTRACE_TRACE_RESPONSE", False),
        capture_client_request_headers=listed("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST"),
        capture_client_response_headers=listed("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_RESPONSE"),
        redact_query_params=frozenset(listed("AUTOTRACE_REDACT_QUERY_PARAMS")),
        propagation_targets=listed("AUTOTRACE_PROPAGATION_TARGETS")
        if r.raw("AUTOTRACE_PROPAGATION_TARGETS")
        else None,
        baggage_targets=listed("AUTOTRACE_BAGGAGE_TARGETS"),
    )


def _service_name(r: _Reader, argv: list[str]) -> tuple[str, bool]:
    explicit = r.raw("OTEL_SERVICE_NAME")
    if explicit:
        return explicit, True
    from_resource = dict(_resource_attributes(_Reader(r.env))).get("service.name")
    if from_resource:
        return from_resource, True
    derived = derive_service_name(argv)
    if derived == "python":
        # A process started by Python itself (a multiprocessing spawn: uvicorn --workers and --reload,
        # hypercorn's workers) has no command line of its own: it serves its parent's app.
        derived = r.raw(PARENT_SERVICE_VARIABLE) or derived
    return derived, False


def _resource_attributes(r: _Reader) -> tuple[tuple[str, str], ...]:
    # The specification: on a parse error the whole value is discarded (and the error reported).
    none: tuple[tuple[str, str], ...] = ()
    return r.parse(("OTEL_RESOURCE_ATTRIBUTES",), none, _key_values, "key=value pairs separated by commas")


def _exporters(r: _Reader) -> tuple[str, ...]:
    found = r.first("OTEL_TRACES_EXPORTER")
    if found is None:
        return ("otlp",)
    name, value = found
    chosen = []
    for item in _names(value):
        if item in EXPORTERS:
            if item not in chosen:
                chosen.append(item)
        else:
            r.bad(name, value, f"unknown exporter {item!r} ignored (known: {', '.join(EXPORTERS)})")
    if not chosen:
        return ("otlp",)
    if "none" in chosen:
        return ("none",) if chosen == ["none"] else tuple(x for x in chosen if x != "none")
    return tuple(chosen)


def _propagators(r: _Reader) -> tuple[str, ...]:
    found = r.first("OTEL_PROPAGATORS")
    if found is None:
        return ("tracecontext", "baggage")
    name, value = found
    chosen: list[str] = []
    for item in _names(value):
        if item not in PROPAGATORS:
            r.bad(name, value, f"unknown propagator {item!r} ignored (known: {', '.join(PROPAGATORS)})")
        elif item not in chosen:
            chosen.append(item)
    if not chosen:
        return ("tracecontext", "baggage")
    if "none" in chosen:
        return ("none",)
    return tuple(chosen)


def _sampler_arg(r: _Reader) -> float | None:
    return r.parse(("OTEL_TRACES_SAMPLER_ARG",), None, _ratio, "a number")


def _otlp(r: _Reader) -> OTLPConfig:
    protocol = r.choice(
        ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"), "http/protobuf", PROTOCOLS
    )
    return OTLPConfig(
        protocol=protocol,
        endpoint=_endpoint(r, protocol),
        headers=r.parse(
            ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS"),
            _NO_PAIRS,
            _key_values,
            "key=value pairs separated by commas",
        ),
        timeout_s=r.parse(
            ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"), 10.0, _millis, "milliseconds"
        ),
        compression=r.choice(
            ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION"), "none", COMPRESSIONS
        ),
        certificate=_file(r, "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", "OTEL_EXPORTER_OTLP_CERTIFICATE"),
        client_certificate=_file(
            r, "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE", "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"
        ),
        client_key=_file(r, "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", "OTEL_EXPORTER_OTLP_CLIENT_KEY"),
        insecure=_insecure(r),
    )


def _insecure(r: _Reader) -> bool | None:
    found = r.first("OTEL_EXPORTER_OTLP_TRACES_INSECURE", "OTEL_EXPORTER_OTLP_INSECURE")
    if found is None:
        return None
    return r.parse((found[0],), None, _to_bool, "true or false")


def _file(r: _Reader, *names: str) -> str | None:
    found = r.first(*names)
    if found is None:
        return None
    name, value = found
    if not os.path.isfile(value):
        r.bad(name, value, "no such file; the system's trusted certificates are used instead")
        return None
    return value


def _endpoint(r: _Reader, protocol: str) -> str:
    """The URL to export to, per the OTLP exporter specification's rules for each variable."""
    grpc = protocol == "grpc"
    default = DEFAULT_GRPC_ENDPOINT if grpc else DEFAULT_HTTP_ENDPOINT + "/v1/traces"
    specific = r.raw("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if specific is not None:
        url = _check_url(r, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", specific, grpc)
        if url is not None:
            # Per-signal endpoints are used as they are, but for an empty path, which becomes "/".
            return url if grpc or url.split("://", 1)[1].find("/") >= 0 else url + "/"
    generic = r.raw("OTEL_EXPORTER_OTLP_ENDPOINT")
    if generic is not None:
        url = _check_url(r, "OTEL_EXPORTER_OTLP_ENDPOINT", generic, grpc)
        if url is not None:
            return url if grpc else url.rstrip("/") + "/v1/traces"
    return default


def _check_url(r: _Reader, name: str, value: str, grpc: bool) -> str | None:
    if grpc and "://" not in value:
        value = "http://" + value  # gRPC endpoints are often written host:port
    problem = url_problem(value)
    if problem:
        r.bad(name, value, f"{problem}; using the default endpoint")
        return None
    return value


def url_problem(value: str) -> str:
    """What is wrong with ``value`` as an http(s) endpoint URL, or '' (no urllib: start-up is lean)."""
    scheme, sep, rest = value.partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        return "expected an http:// or https:// URL"
    authority = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0].rpartition("@")[2]
    if authority.startswith("["):
        host, bracket, port = authority[1:].partition("]")
        if not bracket or (port and not port.startswith(":")):
            return "not a valid URL (malformed IPv6 address)"
        port = port[1:]
    else:
        host, _, port = authority.partition(":")
    if not host:
        return "expected an http:// or https:// URL with a host"
    if port and (not (port.isascii() and port.isdigit()) or int(port) > 65535):
        return f"not a valid URL (port {port!r} is not a number from 0 to 65535)"
    return ""


def _batch(r: _Reader) -> BatchConfig:
    queue = r.parse(("OTEL_BSP_MAX_QUEUE_SIZE",), 2048, _positive_int, "a positive integer")
    size = r.parse(("OTEL_BSP_MAX_EXPORT_BATCH_SIZE",), 512, _positive_int, "a positive integer")
    if size > queue:
        r.bad("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", str(size), f"larger than the queue ({queue}); using {queue}")
        size = queue
    return BatchConfig(
        schedule_delay_s=r.parse(("OTEL_BSP_SCHEDULE_DELAY",), 5.0, _millis, "milliseconds"),
        export_timeout_s=r.parse(("OTEL_BSP_EXPORT_TIMEOUT",), 30.0, _millis, "milliseconds"),
        max_queue_size=queue,
        max_export_batch_size=size,
        buffer_bytes=r.parse(
            ("AUTOTRACE_EXPORT_BUFFER_SIZE",), DEFAULT_EXPORT_BUFFER, parse_size, "a size such as 32MiB or 0"
        ),
    )


DEFAULT_LOG_FIELDS = (
    "[trace_id=%(trace_id)s span_id=%(span_id)s trace_flags=%(trace_flags)s service.name=%(service_name)s]"
)


def _log_format(r: _Reader) -> str:
    """AUTOTRACE_LOG_FORMAT: ``true`` for our fields, ``false``/empty for none, or a %-style fragment."""
    value = (r.raw("AUTOTRACE_LOG_FORMAT") or "").strip()
    if value.lower() in ("", "false", "0", "no", "off"):
        return ""
    if value.lower() in ("true", "1", "yes", "on", "default"):
        return DEFAULT_LOG_FIELDS
    if "%(" not in value:
        r.bad("AUTOTRACE_LOG_FORMAT", value, "expected true, false or a fragment such as %(trace_id)s")
        return ""
    return value


_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "kib": 1024,
    "mb": 1000**2,
    "mib": 1024**2,
    "gb": 1000**3,
    "gib": 1024**3,
}


def parse_size(value: str) -> int:
    """``32MiB``, ``64 MB``, ``500kb``, ``1048576`` (bytes) → bytes."""
    text = value.strip().lower()
    digits = text.rstrip("abgikm ")
    unit = text[len(digits) :].strip()
    if unit not in _SIZE_UNITS or not digits:
        raise BadValue("unknown unit")
    number = float(digits)
    if not number >= 0 or number == float("inf"):
        raise BadValue("must not be negative")
    return int(number * _SIZE_UNITS[unit])


def _limits(r: _Reader) -> LimitsConfig:
    def limit(specific: str, general: str | None, default: int | None) -> int | None:
        names = (specific, general) if general else (specific,)
        return r.parse(names, default, _non_negative_int, "a non-negative integer")

    return LimitsConfig(
        attribute_count=limit("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "OTEL_ATTRIBUTE_COUNT_LIMIT", 128),
        attribute_value_length=limit(
            "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT",
            "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
            DEFAULT_ATTRIBUTE_VALUE_LENGTH,
        ),
        event_count=limit("OTEL_SPAN_EVENT_COUNT_LIMIT", None, 128),
        link_count=limit("OTEL_SPAN_LINK_COUNT_LIMIT", None, 128),
        event_attribute_count=limit("OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT", None, 128),
        link_attribute_count=limit("OTEL_LINK_ATTRIBUTE_COUNT_LIMIT", None, 128),
    )


# --------------------------------------------------------------------------------------------------
# Service name


def _program_argv() -> list[str]:
    """The command line as typed (``python -m uvicorn app:app`` keeps its ``-m uvicorn``)."""
    orig = getattr(sys, "orig_argv", None)
    return list(orig) if orig else [sys.executable, *sys.argv]


PARENT_SERVICE_VARIABLE = "AUTOTRACE_PARENT_SERVICE_NAME"  # set by a traced process for its children


def derive_service_name(argv: list[str]) -> str:
    """A service name from the command line, used when OTEL_SERVICE_NAME is unset.

    ``python app.py`` -> ``app``; ``python -m mod`` -> ``mod``; ``uvicorn gateway:app`` -> ``gateway``
    (also ``python -m uvicorn`` and gunicorn, hypercorn, ...); any other program -> its file name.
    """
    program, rest = _program(argv)
    if program in APP_SERVERS:
        for arg in rest:
            module, colon, attr = arg.partition(":")
            if colon and module.replace(".", "_").isidentifier() and attr[:1].isidentifier():
                return module.rsplit(".", 1)[-1]
    return program or "python"


def _program(argv: list[str]) -> tuple[str, list[str]]:
    if not argv:
        return "python", []
    first = _stem(argv[0])
    if not first.startswith("python") and first not in ("py", "pypy", "pypy3"):
        return first, argv[1:]
    args = argv[1:]
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "-m" and i + 1 < len(args):
            return args[i + 1], args[i + 2 :]
        if arg.startswith("-m") and len(arg) > 2:
            return arg[2:], args[i + 1 :]
        if arg == "-c" or arg.startswith("-c"):
            return "python", []
        if arg in ("-X", "-W"):
            i += 2
            continue
        if arg.startswith("-"):
            i += 1
            continue
        return _stem(arg), args[i + 1 :]
    return "python", []


def _stem(path: str) -> str:
    name = os.path.basename(path.rstrip("/\\"))
    return name[:-3] if name.endswith(".py") else name
