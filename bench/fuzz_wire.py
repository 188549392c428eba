"""A longer hostile-request run, by hand: the generator of tests/e2e/test_hostile_wire.py against a server
traced by the real ``autotrace`` CLI.

    .venv/bin/python bench/fuzz_wire.py [--requests 20000] [--seed 1] [--stack uvicorn-starlette]
                                        [--concurrency 4] [--compare] [--strict]

Each request is a seeded raw request written over its own socket (garbage methods, non-UTF-8 paths,
broken and huge trace headers, 16 KiB values, odd header bytes...); the app forwards ``/forward`` calls
to a loopback echo. Printed: the count of each status line, every 5xx with the mutations behind it, the
``autotrace:`` lines of the server's stderr (an internal error shows there), how many forwarded calls
carried invalid trace headers, and how many spans arrived with an attribute over 8192 characters.
``--compare`` also sends every request to the same server untraced and counts the answers that differ.
``--strict`` runs the agent with AUTOTRACE_STRICT=true (internal errors raised: they become 5xx).
Exits 1 when anything above is wrong, 0 otherwise. Run from the project root with the project venv.
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.test_hostile_wire import (  # noqa: E402
    STACKS,
    VALUE_LIMIT,
    Echo,
    RawRequest,
    hostile_requests,
    plain_server_env,
    serve,
    status_line,
    traced_server_env,
)
from tests.otlp_receiver import OTLPReceiver  # noqa: E402
from tests.unit.test_hostile_input import check_outgoing  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--stack", choices=sorted(STACKS), default="uvicorn-starlette")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--compare", action="store_true", help="also send each request untraced")
    parser.add_argument("--strict", action="store_true", help="AUTOTRACE_STRICT=true for the traced server")
    return parser.parse_args()


def invalid_forwarded(echo: Echo) -> int:
    bad = 0
    for seen in echo.seen:
        try:
            assert all(len(values) <= 1 for values in seen.values())
            check_outgoing({name: values[0] for name, values in seen.items() if values})
        except AssertionError:
            bad += 1
    return bad


def too_long(receiver: OTLPReceiver) -> int:
    def values(span_attributes: dict[str, object]) -> list[object]:
        out: list[object] = []
        for value in span_attributes.values():
            out += value if isinstance(value, tuple) else [value]
        return out

    return sum(
        any(isinstance(v, str) and len(v) > VALUE_LIMIT for v in values(span.attributes))
        for span in receiver.spans
    )


def main() -> int:
    args = parse_args()
    folder = Path(tempfile.mkdtemp(prefix="fuzz-wire-"))
    requests: list[RawRequest] = list(hostile_requests(args.seed, args.requests))
    echo, plain_echo = Echo(), Echo()
    with ExitStack() as stack, OTLPReceiver(grpc=False) as receiver:
        env = traced_server_env(receiver, folder, echo, args.stack)
        env["AUTOTRACE_STRICT"] = "true" if args.strict else "false"
        traced = stack.enter_context(serve(args.stack, folder, env, traced=True))
        plain = (
            stack.enter_context(serve(args.stack, folder, plain_server_env(folder, plain_echo), traced=False))
            if args.compare
            else None
        )

        def send(request: RawRequest) -> tuple[str, str | None]:
            data = request.encode()
            return status_line(traced.port, data), status_line(plain.port, data) if plain else None

        started = time.monotonic()
        with ThreadPoolExecutor(args.concurrency) as pool:
            answers = list(pool.map(send, requests))
        elapsed = time.monotonic() - started
        stack.close()  # the servers stop, the traced one flushing its spans on the way out
        stderr = traced.stderr.read_text()
        spans, over = len(receiver.spans), too_long(receiver)
    echo.close()
    plain_echo.close()

    counts = collections.Counter(got for got, _ in answers)
    # "HTTP/1.1 5xx ...": the status code's first digit is the line's tenth character ("<closed>" has none).
    errors = [
        (n, r.labels, got) for n, (r, (got, _)) in enumerate(zip(requests, answers)) if got[9:10] == "5"
    ]
    different = [(n, got, other) for n, (got, other) in enumerate(answers) if plain and got != other]
    said = [line for line in stderr.splitlines() if "autotrace:" in line or "internal error" in line]
    invalid = invalid_forwarded(echo)
    print(f"{args.requests} requests to {args.stack} (seed {args.seed}) in {elapsed:.1f} s")
    for line, count in counts.most_common():
        print(f"  {count:7d}  {line!r}")
    print(f"5xx: {len(errors)}")
    for n, labels, got in errors[:20]:
        print(f"  #{n} {labels}: {got}")
    if plain:
        print(f"answers different untraced: {len(different)}")
        for n, got, other in different[:20]:
            print(f"  #{n} traced {got!r}, untraced {other!r}")
    print(f"autotrace lines on stderr: {len(said)}")
    for line in said[:20]:
        print(f"  {line}")
    print(f"forwarded calls: {len(echo.seen)}, with invalid trace headers: {invalid}")
    print(f"spans received: {spans}, with an attribute over {VALUE_LIMIT} characters: {over}")
    return 1 if errors or different or said or invalid or over else 0


if __name__ == "__main__":
    sys.exit(main())
