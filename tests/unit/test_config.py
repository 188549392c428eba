"""Config.from_env: every variable, its default, and what a bad value does (a Problem, the default)."""

from __future__ import annotations

import pytest

from autotrace.config import Config, derive_service_name


def cfg(**env: str) -> Config:
    return Config.from_env(env, argv=["python", "app.py"])


def problem_vars(config: Config) -> list[str]:
    return [p.variable for p in config.problems]


def test_defaults_follow_the_specification() -> None:
    c = cfg()
    assert c.enabled is True
    assert c.exporters == ("otlp",)
    assert c.otlp.protocol == "http/protobuf"
    assert c.otlp.endpoint == "http://localhost:4318/v1/traces"
    assert c.otlp.timeout_s == 10.0
    assert c.otlp.compression == "none"
    assert c.sampler == "parentbased_always_on"
    assert c.propagators == ("tracecontext", "baggage")
    assert (c.batch.schedule_delay_s, c.batch.export_timeout_s) == (5.0, 30.0)
    assert (c.batch.max_queue_size, c.batch.max_export_batch_size) == (2048, 512)
    assert c.limits.attribute_count == 128
    assert c.limits.attribute_value_length == 8192  # ours: the standard leaves it unbounded
    assert c.batch.buffer_bytes == 32 * 1024 * 1024
    assert c.problems == ()


@pytest.mark.parametrize(
    ("env", "enabled"),
    [
        ({"OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_SDK_DISABLED": "TRUE"}, False),
        ({"OTEL_SDK_DISABLED": "false"}, True),
        ({"AUTOTRACE_ENABLED": "false"}, False),
        ({"AUTOTRACE_ENABLED": "true", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_SDK_DISABLED": ""}, True),
    ],
)
def test_disabling(env: dict[str, str], enabled: bool) -> None:
    assert cfg(**env).enabled is enabled


def test_bad_boolean_warns_and_keeps_default() -> None:
    c = cfg(OTEL_SDK_DISABLED="maybe")
    assert c.enabled is True
    assert problem_vars(c) == ["OTEL_SDK_DISABLED"]
    assert "'maybe'" in str(c.problems[0])


@pytest.mark.parametrize(
    ("env", "protocol", "endpoint"),
    [
        ({}, "http/protobuf", "http://localhost:4318/v1/traces"),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "grpc", "http://localhost:4317"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, "http/protobuf", "http://c:4318/v1/traces"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"}, "http/protobuf", "http://c:4318/v1/traces"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c/base"}, "http/protobuf", "http://c/base/v1/traces"),
        # per-signal: as is, except that an empty path becomes "/"
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:1/x"}, "http/protobuf", "http://c:1/x"),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:1"}, "http/protobuf", "http://c:1/"),
        (
            {
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://a:1/t",
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://b:2",
            },
            "http/protobuf",
            "http://a:1/t",
        ),
        (
            {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4317"},
            "grpc",
            "http://collector:4317",
        ),
        (
            {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            "http/json",
            "http://localhost:4318/v1/traces",
        ),
    ],
)
def test_endpoint_resolution(env: dict[str, str], protocol: str, endpoint: str) -> None:
    c = cfg(**env)
    assert (c.otlp.protocol, c.otlp.endpoint) == (protocol, endpoint)
    assert c.problems == ()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "udp"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://x"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4318"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://host:99999"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "soon"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "-5"),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "brotli"),
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent/ca.pem"),
        ("OTEL_TRACES_SAMPLER", "sometimes"),
        ("OTEL_TRACES_SAMPLER_ARG", "half"),
        ("OTEL_BSP_SCHEDULE_DELAY", "abc"),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "0"),
        ("OTEL_BSP_EXPORT_TIMEOUT", "1e999"),
        ("OTEL_ATTRIBUTE_COUNT_LIMIT", "-1"),
        ("OTEL_LOG_LEVEL", "loud"),
        ("OTEL_RESOURCE_ATTRIBUTES", "novalue"),
        ("OTEL_EXPORTER_OTLP_INSECURE", "perhaps"),
        ("AUTOTRACE_SHUTDOWN_TIMEOUT", "x"),
    ],
)
def test_each_bad_value_is_one_problem_and_the_default_is_used(name: str, value: str) -> None:
    c = cfg(**{name: value})
    assert problem_vars(c) == [name]
    assert repr(value) in str(c.problems[0])
    default = cfg()
    assert (c.otlp, c.sampler, c.batch, c.limits, c.log_level) == (
        default.otlp,
        default.sampler,
        default.batch,
        default.limits,
        default.log_level,
    )


def test_other_variables_still_apply_next_to_a_bad_one() -> None:
    c = cfg(OTEL_EXPORTER_OTLP_PROTOCOL="udp", OTEL_SERVICE_NAME="users", OTEL_TRACES_SAMPLER="always_off")
    assert c.service_name == "users"
    assert c.sampler == "always_off"
    assert c.otlp.protocol == "http/protobuf"


def test_header_values_are_never_echoed() -> None:
    c = cfg(OTEL_EXPORTER_OTLP_HEADERS="api-key secret-token")
    assert problem_vars(c) == ["OTEL_EXPORTER_OTLP_HEADERS"]
    assert "secret-token" not in str(c.problems[0])


def test_headers_are_percent_decoded_and_signal_specific_wins() -> None:
    c = cfg(OTEL_EXPORTER_OTLP_HEADERS="a=1", OTEL_EXPORTER_OTLP_TRACES_HEADERS="api-key=x%20y,b=2")
    assert c.otlp.headers == (("api-key", "x y"), ("b", "2"))


def test_milliseconds() -> None:
    c = cfg(OTEL_EXPORTER_OTLP_TIMEOUT="2500", OTEL_BSP_SCHEDULE_DELAY="100", OTEL_BSP_EXPORT_TIMEOUT="700")
    assert (c.otlp.timeout_s, c.batch.schedule_delay_s, c.batch.export_timeout_s) == (2.5, 0.1, 0.7)


def test_batch_size_capped_at_queue_size() -> None:
    c = cfg(OTEL_BSP_MAX_QUEUE_SIZE="100", OTEL_BSP_MAX_EXPORT_BATCH_SIZE="500")
    assert c.batch.max_export_batch_size == 100
    assert problem_vars(c) == ["OTEL_BSP_MAX_EXPORT_BATCH_SIZE"]


def test_limits_specific_over_general() -> None:
    c = cfg(
        OTEL_ATTRIBUTE_COUNT_LIMIT="10",
        OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT="20",
        OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT="64",
    )
    assert (c.limits.attribute_count, c.limits.attribute_value_length) == (20, 64)


@pytest.mark.parametrize(
    ("value", "expected", "bad"),
    [
        ("otlp", ("otlp",), False),
        ("console,otlp", ("console", "otlp"), False),
        ("none", ("none",), False),
        ("otlp,zipkin", ("otlp",), True),
        ("zipkin", ("otlp",), True),
        ("otlp,otlp", ("otlp",), False),
    ],
)
def test_exporters(value: str, expected: tuple[str, ...], bad: bool) -> None:
    c = cfg(OTEL_TRACES_EXPORTER=value)
    assert c.exporters == expected
    assert bool(c.problems) is bad


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("tracecontext", ("tracecontext",)),
        ("b3, b3multi ,jaeger", ("b3", "b3multi", "jaeger")),
        ("none", ("none",)),
        ("tracecontext,xray", ("tracecontext",)),
        ("TraceContext,Baggage", ("tracecontext", "baggage")),
    ],
)
def test_propagators(value: str, expected: tuple[str, ...]) -> None:
    assert cfg(OTEL_PROPAGATORS=value).propagators == expected


def test_resource_attributes_and_service_name_precedence() -> None:
    c = cfg(OTEL_RESOURCE_ATTRIBUTES="deployment.environment=prod,team=a%2Cb,service.name=fromres")
    assert dict(c.resource_attributes) == {
        "deployment.environment": "prod",
        "team": "a,b",
        "service.name": "fromres",
    }
    assert (c.service_name, c.service_name_explicit) == ("fromres", True)
    c = cfg(OTEL_RESOURCE_ATTRIBUTES="service.name=fromres", OTEL_SERVICE_NAME="explicit")
    assert c.service_name == "explicit"


def test_disabled_instrumentations_from_both_variables() -> None:
    c = cfg(
        OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="psycopg, Redis", AUTOTRACE_DISABLED_INSTRUMENTATIONS="sqlite3"
    )
    assert c.disabled_instrumentations == frozenset({"psycopg", "redis", "sqlite3"})


def test_config_is_frozen() -> None:
    c = cfg()
    with pytest.raises(AttributeError):
        c.enabled = False  # type: ignore[misc]
    assert c == cfg()
    assert c.replace(sampler="always_off").sampler == "always_off"


@pytest.mark.parametrize(
    ("argv", "name"),
    [
        (["python", "app.py"], "app"),
        (["/usr/bin/python3.11", "/srv/svc/users.py", "--port", "1"], "users"),
        (["python", "-m", "mypkg.worker"], "mypkg.worker"),
        (["python", "-mhttp.server"], "http.server"),
        (["python", "-X", "dev", "-m", "uvicorn", "gateway:app", "--port", "1"], "gateway"),
        (["python", "-c", "pass"], "python"),
        (["python"], "python"),
        (["/venv/bin/uvicorn", "gateway:app"], "gateway"),
        (["/venv/bin/uvicorn", "--port", "8000", "svc.main:app"], "main"),
        (["gunicorn", "-w", "4", "-b", "127.0.0.1:8000", "app:app"], "app"),
        (["hypercorn", "auth:app"], "auth"),
        (["/venv/bin/celery", "-A", "proj", "worker"], "celery"),
        (["/venv/bin/my-tool", "run"], "my-tool"),
        ([], "python"),
    ],
)
def test_service_name_derived_from_the_command_line(argv: list[str], name: str) -> None:
    assert derive_service_name(argv) == name


def test_a_process_without_a_command_line_of_its_own_takes_its_parents_service_name() -> None:
    spawned = ["python", "-c", "from multiprocessing.spawn import spawn_main; spawn_main()"]
    env = {"AUTOTRACE_PARENT_SERVICE_NAME": "billing"}
    assert Config.from_env(env, argv=spawned).service_name == "billing"
    assert Config.from_env(env, argv=["python", "other.py"]).service_name == "other"
    assert Config.from_env({**env, "OTEL_SERVICE_NAME": "x"}, argv=spawned).service_name == "x"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("32MiB", 32 * 1024**2), ("64 MB", 64 * 1000**2), ("512kib", 524288), ("1048576", 1 << 20), ("0", 0)],
)
def test_export_buffer_size_units(value: str, expected: int) -> None:
    c = Config.from_env({"AUTOTRACE_EXPORT_BUFFER_SIZE": value}, argv=["x"])
    assert (c.batch.buffer_bytes, c.problems) == (expected, ())


@pytest.mark.parametrize("value", ["lots", "12 parsecs", "-5MB", "MB"])
def test_bad_export_buffer_size_warns_and_keeps_the_default(value: str) -> None:
    c = Config.from_env({"AUTOTRACE_EXPORT_BUFFER_SIZE": value}, argv=["x"])
    assert c.batch.buffer_bytes == 32 * 1024**2
    assert [p.variable for p in c.problems] == ["AUTOTRACE_EXPORT_BUFFER_SIZE"]
