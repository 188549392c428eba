"""One request to a real web app under the real CLI queries every driver: each query is one CLIENT
span under the request's SERVER span, and no literal, parameter, key or value reaches the receiver."""

from __future__ import annotations

import json
import subprocess
import urllib.request

from tests.e2e.conftest import AUTOTRACE, traced_env
from tests.e2e.test_server_spans import APPS, REPO, free_port, parent_header, wait_until_listening
from tests.e2e.webapps import db_app
from tests.instrumentation.conftest import require_service
from tests.otlp_receiver import OTLPReceiver

CLIENT, SERVER = 3, 2
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"

# What each driver's query looks like at the receiver: (system, span name) in the order they run.
EXPECTED = [
    ("sqlite", "CREATE TABLE lite_orders"),
    ("sqlite", "INSERT lite_orders"),
    ("sqlite", "SELECT lite_orders"),
    ("postgresql", "SELECT pg_class"),
    ("postgresql", "SELECT pg_namespace"),
    ("mariadb", "SELECT information_schema.tables"),
    ("redis", "SET"),
    ("redis", "GET"),
    ("postgresql", "SELECT pg_database"),
    ("postgresql", "SELECT pg_am"),
    ("redis", "EXISTS"),
]


def test_every_driver_in_one_request(receiver: OTLPReceiver) -> None:
    for name, port in (("PostgreSQL", 5432), ("MariaDB", 3306), ("Redis", 6379)):
        require_service(name, port)
    port = free_port()
    args = [AUTOTRACE, "uvicorn", "--host", "127.0.0.1", "--port", str(port), f"{APPS}.db_app:app"]
    env = traced_env(receiver, PYTHONPATH=str(REPO), OTEL_SERVICE_NAME="orders")
    server = subprocess.Popen(args, env=env, cwd=REPO, stderr=subprocess.PIPE, text=True)
    try:
        wait_until_listening(port, server)
        url = f"http://127.0.0.1:{port}/orders/7"
        request = urllib.request.Request(url, headers=dict([parent_header(TRACE_ID)]))
        with urllib.request.urlopen(request, timeout=30) as response:
            out = json.loads(response.read())
        assert out == {
            "sqlite3": 1,
            "psycopg": 0,
            "psycopg2": 0,
            "pymysql": 0,
            "redis": True,
            "asyncpg": 0,
            "psycopg-async": 0,
            "redis-async": 1,
        }
        spans = receiver.wait_for_spans(1 + len(EXPECTED), predicate=lambda s: s.trace_id == TRACE_ID)
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=15)
    assert "autotrace: WARNING" not in stderr, stderr
    (request_span,) = [s for s in spans if s.kind == SERVER]
    assert request_span.name == "GET /orders/{order_id}"
    queries = sorted((s for s in spans if s.kind == CLIENT), key=lambda s: s.start_ns)
    assert [(q.attributes["db.system.name"], q.name) for q in queries] == EXPECTED
    assert {q.parent_span_id for q in queries} == {request_span.span_id}
    for query in queries:
        if query.attributes["db.system.name"] != "redis":
            assert "?" in query.attributes["db.query.text"] or query.name.startswith("CREATE")
    # Nothing secret anywhere in what was exported, in any encoding the protobuf could hold it.
    payload = receiver.payloads
    assert payload
    for secret in (db_app.SECRET_LITERAL, db_app.SECRET_PARAM, db_app.SECRET_KEY, db_app.SECRET_VALUE):
        assert secret.encode() not in payload, secret
