"""Flask, served by gunicorn or by its own development server (``python flask_app.py PORT``)."""

from __future__ import annotations

import sys

from flask import Flask, Response

from tests.e2e.webapps import common

app = Flask(__name__)


@app.get("/users/<int:user_id>")
def user(user_id: int) -> Response:
    return Response(common.load_user(str(user_id)), headers=common.RESPONSE_HEADERS)


@app.get("/boom")
def boom() -> str:
    common.boom()
    return ""


@app.get("/fail503")
def fail503() -> tuple[str, int]:
    return "unavailable", 503


@app.get("/stream")
def stream() -> Response:
    return Response(common.chunks(), mimetype="text/plain")


@app.get("/healthz")
def healthz() -> bytes:
    return common.current_trace_id()


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(sys.argv[1]), use_reloader=False)
