"""Pure pieces of the server spans: redaction, Host parsing, excluded URL patterns, HTTP configuration."""

from __future__ import annotations

import pytest

from autotrace import redact
from autotrace.config import Config
from autotrace.middleware._server import compile_excluded, split_host


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ""),
        ("q=1", "q=1"),
        ("q=1&token=abc", "q=1&token=REDACTED"),
        ("Signature=x&sig=y&AWSAccessKeyId=z", "Signature=REDACTED&sig=REDACTED&AWSAccessKeyId=REDACTED"),
        ("PASSWORD=hunter2", "PASSWORD=REDACTED"),
        ("api%5Fkey=k", "api%5Fkey=REDACTED"),  # names are compared decoded
        ("token", "token"),  # no value, nothing to hide
        ("a=1&&token=&b", "a=1&&token=REDACTED&b"),
        ("x=token%3Dabc", "x=token%3Dabc"),  # only names are matched, never values
    ],
)
def test_query_redaction(query: str, expected: str) -> None:
    assert redact.query(query) == expected


def test_query_redaction_with_user_names() -> None:
    assert redact.query("tenant=acme&q=1", frozenset({"tenant"})) == "tenant=REDACTED&q=1"


@pytest.mark.parametrize(
    "name", ["authorization", "cookie", "set-cookie", "proxy-authorization", "x-api-key"]
)
def test_sensitive_headers(name: str) -> None:
    assert redact.header_value(name, "secret") == "[REDACTED]"


def test_other_headers_are_kept_unless_named() -> None:
    assert redact.header_value("x-req", "hello") == "hello"
    assert redact.header_value("x-req", "hello", frozenset({"x-req"})) == "[REDACTED]"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://user:pw@host:8080/p?q", "http://REDACTED:REDACTED@host:8080/p?q"),
        ("https://host/path@x", "https://host/path@x"),
        ("postgresql://u@db/app", "postgresql://REDACTED:REDACTED@db/app"),
        ("not a url", "not a url"),
    ],
)
def test_url_credentials(url: str, expected: str) -> None:
    assert redact.url_credentials(url) == expected


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("example.com", ("example.com", None)),
        ("example.com:8080", ("example.com", 8080)),
        ("[::1]:80", ("::1", 80)),
        ("[::1]", ("::1", None)),
        ("[::1", (None, None)),
        ("host:notaport", ("host", None)),
        ("host:99999", ("host", None)),
        (":80", (None, None)),
        ("", (None, None)),
    ],
)
def test_split_host(host: str, expected: tuple[str | None, int | None]) -> None:
    assert split_host(host) == expected


def test_excluded_patterns_are_searched_in_the_full_url() -> None:
    match = compile_excluded(["healthz", r"^https?://[^/]+/metrics$"])
    assert match is not None
    assert match("http://h/healthz")
    assert match("http://h/api/healthz?x=1")
    assert match("http://h/metrics")
    assert not match("http://h/metrics/x")
    assert not match("http://h/users")
    assert compile_excluded([]) is None


def test_a_pattern_with_a_global_flag_works_beside_others() -> None:
    match = compile_excluded(["(?i)healthz", "metrics"])
    assert match is not None
    assert match("http://h/HealthZ") and match("http://h/metrics") and not match("http://h/users")


def test_an_invalid_pattern_is_matched_as_text(capsys: pytest.CaptureFixture[str]) -> None:
    match = compile_excluded(["/static/[v1"])
    assert match is not None and match("http://h/static/[v1/app.js")
    assert "excluded URL pattern '/static/[v1' is not a regular expression" in capsys.readouterr().err


def test_http_configuration_from_the_environment() -> None:
    config = Config.from_env(
        {
            "OTEL_PYTHON_EXCLUDED_URLS": "healthz, /ping",
            "AUTOTRACE_EXCLUDED_URLS": "/ping,/ready",
            "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST": "X-Req, Authorization",
            "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_RESPONSE": "x-resp",
            "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS": "X-Session",
            "AUTOTRACE_SANITIZE_FIELDS": "tenant",
            "AUTOTRACE_TRACE_RESPONSE": "true",
        },
        argv=["x"],
    )
    http = config.http
    assert http.excluded_urls == ("healthz", "/ping", "/ready")
    assert http.capture_request_headers == ("x-req", "authorization")
    assert http.capture_response_headers == ("x-resp",)
    assert http.sanitize_fields == frozenset({"x-session", "tenant"})
    assert http.trace_response is True
    assert config.problems == ()


def test_bad_trace_response_value_warns_and_stays_off() -> None:
    config = Config.from_env({"AUTOTRACE_TRACE_RESPONSE": "maybe"}, argv=["x"])
    assert config.http.trace_response is False
    assert [p.variable for p in config.problems] == ["AUTOTRACE_TRACE_RESPONSE"]


def test_django_routes_become_http_routes() -> None:
    from autotrace.instrumentation.django import route_template

    assert route_template("users/<int:user_id>") == "/users/<int:user_id>"
    assert route_template("") == "/"  # path("", view): the site's root
    assert route_template("^articles/(?P<year>[0-9]{4})/$") == "/articles/(?P<year>[0-9]{4})/"
    assert route_template(None) is None
