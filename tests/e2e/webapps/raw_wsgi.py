"""A bare WSGI callable, no framework."""

from __future__ import annotations

import sys

from tests.e2e.webapps import common


def app(environ, start_response):  # type: ignore[no-untyped-def]
    path = environ["PATH_INFO"]
    if path.startswith("/users/"):
        start_response("200 OK", [("content-type", "text/plain"), *common.RESPONSE_HEADERS])
        return [common.load_user(path.rsplit("/", 1)[1])]
    if path == "/boom":
        common.boom()
    if path == "/fail503":
        start_response("503 Service Unavailable", [("content-type", "text/plain")])
        return [b"unavailable"]
    if path == "/stream":
        start_response("200 OK", [("content-type", "text/plain")])
        return common.chunks()
    if path == "/healthz":
        start_response("200 OK", [("content-type", "text/plain")])
        return [common.current_trace_id()]
    start_response("404 Not Found", [("content-type", "text/plain")])
    return [b"not found"]


if __name__ == "__main__":
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    make_server("127.0.0.1", int(sys.argv[1]), app, handler_class=Quiet).serve_forever()
