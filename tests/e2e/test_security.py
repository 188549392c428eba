"""The security model, end to end: secrets planted in every place a request can carry them never reach
the collector, while the same places with harmless values are recorded (so the test can fail).

The suite-wide grep in tests/e2e/conftest.py checks every payload of every end-to-end test as well.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
from pathlib import Path

from tests.e2e.conftest import AUTOTRACE, PLANTED_SECRETS, traced_env, write_script
from tests.e2e.test_server_spans import free_port, wait_until_listening
from tests.instrumentation.conftest import require_service
from tests.otlp_receiver import OTLPReceiver

APP = """
import sqlite3

import psycopg
import redis
import requests
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

ECHO = "{echo}"


async def signup(request):
    body = await request.body()  # carries s3cr3t-body; bodies are never recorded
    lite = sqlite3.connect(":memory:")
    lite.execute("CREATE TABLE users (email TEXT, password TEXT)")
    lite.execute("INSERT INTO users VALUES ('s3cr3t-sql-literal@example.com', ?)", ("s3cr3t-param",))
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres password=s3cr3t-dsn") as pg:
        pg.execute("CREATE TEMP TABLE accounts (email text PRIMARY KEY)")
        pg.execute("INSERT INTO accounts VALUES ('s3cr3t-dup@example.com')")
        try:
            pg.execute("INSERT INTO accounts VALUES ('s3cr3t-dup@example.com')")
        except psycopg.errors.UniqueViolation:
            pass
    cache = redis.Redis(host="127.0.0.1", port=6379)
    cache.set("session:s3cr3t-redis-key", "s3cr3t-redis-value")
    outgoing = ECHO.replace("http://", "http://alice:s3cr3t-url-password@") + "/x?api_key=s3cr3t-k&plain=v"
    # requests turns URL credentials into an Authorization header of its own.
    seen = requests.get(outgoing, headers={{"X-Plain": "p"}}, timeout=10).json()
    response = JSONResponse({{"body": len(body), "echo_saw": seen}})
    response.set_cookie("session", "s3cr3t-set-cookie")
    response.headers["X-Plain-Resp"] = "shown"
    return response


app = Starlette(routes=[Route("/signup", signup, methods=["POST"])])
"""

CAPTURE = {
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST": "authorization,cookie,x-session-id,x-plain",
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_RESPONSE": "set-cookie,x-plain-resp",
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST": "authorization,x-plain",
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_RESPONSE": "set-cookie",
}


def test_planted_secrets_never_reach_the_collector(tmp_path: Path, receiver: OTLPReceiver, echo: str) -> None:
    require_service("PostgreSQL", 5432)
    require_service("Redis", 6379)
    write_script(tmp_path, "secretapp.py", APP.format(echo=echo))
    port = free_port()
    args = [AUTOTRACE, "uvicorn", "--host", "127.0.0.1", "--port", str(port), "secretapp:app"]
    env = traced_env(receiver, OTEL_SERVICE_NAME="secrets", **CAPTURE)
    server = subprocess.Popen(args, env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        wait_until_listening(port, server)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/signup?token=s3cr3t-query&plain=visible",
            data=b'{"password": "s3cr3t-body"}',
            headers={
                "Authorization": "Basic s3cr3t-basic",
                "Cookie": "session=s3cr3t-cookie",
                "X-Session-Id": "s3cr3t-session",
                "X-Plain": "visible-header",
                "baggage": "user.email=s3cr3t-baggage,tenant=acme",
            },
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            out = json.loads(response.read())
        spans = receiver.wait_for_spans(8)
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=15)
    assert "autotrace: WARNING" not in stderr, stderr
    # The app got everything it was sent, and sent traceparent but no baggage to a host not allowed it.
    assert out["body"] == len(b'{"password": "s3cr3t-body"}')
    assert "traceparent" in out["echo_saw"] and "baggage" not in out["echo_saw"]

    (server_span,) = [s for s in spans if s.name == "POST /signup"]
    attrs = server_span.attributes
    assert attrs["http.request.header.x-plain"] == ("visible-header",)  # capture works...
    for header in ("authorization", "cookie", "x-session-id"):
        assert attrs[f"http.request.header.{header}"] == ("[REDACTED]",)  # ...and redacts
    assert attrs["http.response.header.x-plain-resp"] == ("shown",)
    assert attrs["http.response.header.set-cookie"] == ("[REDACTED]",)
    assert attrs["url.query"] == "token=REDACTED&plain=visible"
    (client,) = [s for s in spans if s.name == "GET" and s.kind == 3]
    assert client.attributes["url.full"].endswith("/x?api_key=REDACTED&plain=v")
    assert "@" not in client.attributes["url.full"]
    assert client.attributes["http.request.header.x-plain"] == ("p",)
    assert {s.attributes.get("db.system.name") for s in spans} >= {"sqlite", "postgresql", "redis"}
    assert not [k for s in spans for k in s.attributes if "baggage" in k or k in ("user.email", "tenant")]

    payloads = receiver.payloads
    assert b"visible-header" in payloads  # the grep below would see a secret if there were one
    assert [secret for secret in PLANTED_SECRETS if secret in payloads] == []
