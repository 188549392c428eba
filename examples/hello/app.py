"""A tiny app that makes spans through the OpenTelemetry API; run it under `autotrace`."""

from __future__ import annotations

import time

from opentelemetry import trace

tracer = trace.get_tracer("hello")


def handle(user_id: int) -> str:
    with tracer.start_as_current_span("handle", attributes={"app.user_id": user_id}):
        with tracer.start_as_current_span("load-user"):
            time.sleep(0.01)
        with tracer.start_as_current_span("render"):
            return f"hello {user_id}"


if __name__ == "__main__":
    for uid in (1, 2):
        print(handle(uid))
