"""A misbehaving collector must not hurt the app: latency, failures and memory under collector faults.

    .venv/bin/python bench/collector_faults.py [--protocol http|grpc|both] [--seconds 20] [--json out.json]

For each scenario the bench Starlette app (bench/apps/faults_app.py: one SERVER and two sqlite3 CLIENT
spans a request) is served by ``autotrace uvicorn`` in a subprocess, exporting to an OTLP receiver
(tests/otlp_receiver.py) held in one mode for the whole load:

    healthy   the receiver answers at once                          (the baseline)
    down      nothing listens on the endpoint's port                (connection refused)
    refusing  the receiver reads the request and closes the connection without answering
    slow      the receiver answers after 30 s (the exporter gives up after OTEL_EXPORTER_OTLP_TIMEOUT, 10 s)
    5xx       503 (gRPC: UNAVAILABLE)
    429       429 with Retry-After: 5 (gRPC: RESOURCE_EXHAUSTED with RetryInfo 5 s)

A separate load process (so the receiver's work does not share the clients' interpreter) warms up, then
sends a fixed open-loop load: ``--threads`` keep-alive http.client connections, each sending on its own
schedule, ``--rate`` requests a second in all, for ``--seconds``, recording each request's latency (from
when it was sent, and from when it was due: a stall shows in the second even though a blocked client
sends nothing while it waits). Then the app's RSS (``/proc/<pid>/status``), its CPU time (per thread:
how much autotrace's export threads took), autotrace's export counters
(``autotrace.status()["export"]``, read from the app's untraced ``/stats`` route) and the ``autotrace:``
lines on its stderr are taken; the collector comes back (the receiver is set to ``ok``, or started for
``down``) and the bench waits until the app's exporter holds nothing more, timing how long that takes
and counting how many distinct spans arrived against how many the app made (exported + held + dropped +
rejected + failed).

Runs are grouped in rounds, each a healthy run followed by ``--per-round`` fault runs, so every fault
is compared with a healthy run made minutes before it (p99 ratio, RSS difference) and the spread of
the healthy runs shows the noise. This is a report, not a test: it exits 0 whatever the numbers.
POSIX (reads /proc); run from the project venv (it imports tests/otlp_receiver.py).
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

APP = "bench.apps.faults_app:app"
ITEMS = 1000  # ids served by the app's /items/{id}
CLIENT_TIMEOUT_S = 15.0  # a request slower than this counts as failed
NOISE = 1.5  # a fault run's p99 beyond this times the highest healthy run's is worth a look
PROTOCOLS = {"http": "http/protobuf", "grpc": "grpc"}
# Removed from the inherited environment: they would change what the interpreter or autotrace does.
STRIPPED = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONINSPECT", "PYTHONVERBOSE", "VIRTUAL_ENV")


@dataclass(frozen=True)
class Scenario:
    name: str
    mode: str | None  # the receiver's mode; None: nothing listens
    what: str
    delay: float = 0.0
    retry_after: float | None = None


def scenarios(slow_delay: float, retry_after: float) -> dict[str, Scenario]:
    items = [
        Scenario("healthy", "ok", "receiver answers at once"),
        Scenario("down", None, "nothing listens on the port"),
        Scenario("refusing", "drop", "connection closed without an answer"),
        Scenario("slow", "slow", f"answers after {slow_delay:g} s", delay=slow_delay),
        Scenario("5xx", "error", "HTTP 503 / gRPC UNAVAILABLE"),
        Scenario(
            "429",
            "throttle",
            f"HTTP 429 / RESOURCE_EXHAUSTED, retry after {retry_after:g} s",
            0.0,
            retry_after,
        ),
    ]
    return {s.name: s for s in items}


# --------------------------------------------------------------------------------------------------
# the load process: `collector_faults.py _load PORT WARMUP SECONDS RATE THREADS`, prints JSON


def _client(port: int, start: float, interval: float, offset: float, warm: int, count: int) -> dict[str, Any]:
    """Send ``warm + count`` requests on a fixed schedule on one kept-alive connection; keep the last
    ``count``: (seconds late when sent, latency from sending, latency from when it was due, status)."""
    rng = random.Random(offset)
    conn: http.client.HTTPConnection | None = None
    samples: list[tuple[float, float, float, int]] = []
    errors: dict[str, int] = {}
    for k in range(warm + count):
        due = start + offset + k * interval
        wait = due - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        sent = time.perf_counter()
        status = 0
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT_S)
            conn.request("GET", f"/items/{rng.randint(1, ITEMS)}")
            response = conn.getresponse()
            response.read()
            status = response.status
        except (OSError, http.client.HTTPException) as exc:
            if k >= warm:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            if conn is not None:
                conn.close()
            conn = None
        done = time.perf_counter()
        if k >= warm:
            samples.append((sent - due, done - sent, done - due, status))
    if conn is not None:
        conn.close()
    return {"samples": samples, "errors": errors}


def load_main(argv: list[str]) -> None:
    port, warmup, seconds, rate, threads = (
        int(argv[0]),
        float(argv[1]),
        float(argv[2]),
        float(argv[3]),
        int(argv[4]),
    )
    interval = threads / rate  # each thread's own period
    warm, count = round(warmup / interval), round(seconds / interval)
    start = time.perf_counter() + 0.05
    results: list[dict[str, Any]] = []
    workers = [
        threading.Thread(
            target=lambda i=i: results.append(
                _client(port, start, interval, i * interval / threads, warm, count)
            )
        )
        for i in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    samples = [s for r in results for s in r["samples"]]
    errors: dict[str, int] = {}
    for r in results:
        for name, n in r["errors"].items():
            errors[name] = errors.get(name, 0) + n
    measured_s = time.perf_counter() - (start + warm * interval)
    json.dump({"samples": samples, "errors": errors, "measured_s": measured_s}, sys.stdout)


# --------------------------------------------------------------------------------------------------
# helpers: ports, /proc, the app's /stats


def source_state() -> dict[str, Any]:
    """The commit measured, and whether autotrace/ had changes on top of it."""

    def git(*args: str) -> str:
        try:
            done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return ""
        return done.stdout.strip()

    return {
        "commit": git("rev-parse", "HEAD"),
        "autotrace_changes": git("status", "--porcelain", "autotrace"),
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) in kB."""
    found = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    found[key] = int(value.split()[0])
    except OSError:
        pass
    return found


def cpu_seconds(pid: int, tid: int | None = None) -> float:
    """User + system CPU time of the process (all its threads), or of one of its threads."""
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    try:
        with open(path) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu(pid: int, threads: list[list[Any]]) -> dict[str, float]:
    """CPU seconds so far of each named thread of the app (``threading`` names, by native id)."""
    found: dict[str, float] = {}
    for native_id, name in threads:
        found[name] = found.get(name, 0.0) + cpu_seconds(pid, native_id)
    return found


def get_json(port: int, path: str, timeout: float = 5.0) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise OSError(f"GET {path}: HTTP {response.status}")
        return json.loads(body)
    finally:
        conn.close()


def export_stats(port: int) -> dict[str, Any]:
    """The app's export counters, summed over its processors, with the process id."""
    data = get_json(port, "/stats")
    total = {"queued": 0, "buffered_bytes": 0, "exported": 0, "dropped": 0, "rejected": 0, "failed": 0}
    for stats in data["export"].values():
        for key in total:
            total[key] += stats.get(key, 0)
    total["made"] = sum(total[k] for k in ("queued", "exported", "dropped", "rejected", "failed"))
    return {
        "pid": data["pid"],
        "threads": data["threads"],
        "processors": list(data["export"]),
        "internal_errors": data["internal_errors"],
        **total,
    }


def autotrace_lines(path: Path) -> list[str]:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if line.startswith("autotrace:")]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


class SpanCounter:
    """Counts what the receiver accepts: every span, and distinct span ids (retries may repeat one)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.ids: set[str] = set()
        self.total = 0

    def __call__(self, span: Any) -> None:
        with self._lock:
            self.total += 1
            self.ids.add(span.span_id)

    def counts(self) -> tuple[int, int]:
        with self._lock:
            return len(self.ids), self.total


# --------------------------------------------------------------------------------------------------
# one run


class Run:
    """One scenario: receiver, app, load, then the collector's return."""

    def __init__(self, scenario: Scenario, protocol: str, args: argparse.Namespace, workdir: Path) -> None:
        self.scenario = scenario
        self.protocol = protocol
        self.args = args
        self.http_port, self.grpc_port, self.app_port = free_port(), free_port(), free_port()
        self.counter = SpanCounter()
        self.receiver: Any = None
        self.stderr_path = workdir / f"{protocol}-{scenario.name}-{time.monotonic_ns()}.stderr"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        port = self.grpc_port if self.protocol == "grpc" else self.http_port
        return f"http://127.0.0.1:{port}"

    def start_receiver(self, mode: str, delay: float = 0.0, retry_after: float | None = None) -> None:
        from tests.otlp_receiver import OTLPReceiver

        self.receiver = OTLPReceiver(
            http_port=self.http_port,
            grpc_port=self.grpc_port,
            grpc=self.protocol == "grpc",
            on_span=self.counter,
        ).start()
        self.receiver.set_mode(mode, delay=delay, retry_after=retry_after)
        # The slow receiver answers an exporter that gave up long ago: its BrokenPipeError is expected,
        # and the server's default handler would print a traceback for each.
        server = getattr(self.receiver, "_http", None)
        if server is not None:
            server.handle_error = lambda request, address: None

    def app_env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("OTEL_", "AUTOTRACE_")) and k not in STRIPPED
        }
        env.update(
            OTEL_SERVICE_NAME="faults-bench",
            OTEL_TRACES_EXPORTER="otlp",
            OTEL_EXPORTER_OTLP_PROTOCOL=PROTOCOLS[self.protocol],
            OTEL_EXPORTER_OTLP_ENDPOINT=self.endpoint,
            OTEL_PYTHON_EXCLUDED_URLS="/stats",
            # The launcher execs `uvicorn` from PATH: this venv's, as `autotrace` is.
            PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        )
        env.update(item.split("=", 1) for item in self.args.env)
        return env

    def start_app(self) -> int:
        command = [
            str(Path(sys.executable).parent / "autotrace"),
            "uvicorn",
            APP,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.app_port),
            "--no-access-log",
            "--log-level",
            "warning",
        ]
        with open(self.stderr_path, "wb") as stderr:
            self.proc = subprocess.Popen(
                command, cwd=ROOT, env=self.app_env(), stdout=subprocess.DEVNULL, stderr=stderr
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.stderr_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"the app exited with {self.proc.returncode}:\n{tail}")
            try:
                return int(export_stats(self.app_port)["pid"])
            except (OSError, http.client.HTTPException, ValueError):
                time.sleep(0.2)
        raise RuntimeError(f"the app did not answer within 30 s; see {self.stderr_path}")

    def drive_load(self, pid: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """Run the load process while sampling the app's RSS; return the load's result and samples."""
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "_load",
            str(self.app_port),
            str(self.args.warmup),
            str(self.args.seconds),
            str(self.args.rate),
            str(self.args.threads),
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AUTOTRACE_"))}
        rss: list[int] = []
        threads_before = thread_cpu(pid, export_stats(self.app_port)["threads"])
        cpu_before, started, own_cpu = cpu_seconds(pid), time.perf_counter(), time.process_time()
        # Its result goes to a file: a pipe would fill while this loop polls, and the load would block.
        with tempfile.TemporaryFile() as out:
            load = subprocess.Popen(command, env=env, stdout=out)
            while load.poll() is None:
                rss.append(proc_status(pid).get("VmRSS", 0))
                time.sleep(0.5)
            out.seek(0)
            result = json.load(out)
        wall = time.perf_counter() - started
        cpu = cpu_seconds(pid) - cpu_before
        threads_after = thread_cpu(pid, export_stats(self.app_port)["threads"])
        # Per thread during the load; "(unnamed)": threads Python does not know of (gRPC's own).
        by_thread = {name: round(t - threads_before.get(name, 0.0), 2) for name, t in threads_after.items()}
        by_thread["(unnamed)"] = round(cpu - sum(by_thread.values()), 2)
        watched = {
            "rss_max_kb": max(rss, default=0),
            "cpu_s": cpu,
            "thread_cpu_s": by_thread,
            # this process's CPU meanwhile: nearly all of it the receiver's (decoding spans)
            "receiver_cpu_s": time.process_time() - own_cpu,
            "wall_s": wall,
            "attempts": len(self.receiver.requests) if self.receiver is not None else 0,
        }
        return result, watched

    def recover(self, made: int) -> dict[str, Any]:
        """Bring the collector back; wait until the app's exporter holds nothing (or the timeout)."""
        back = time.perf_counter()
        if self.receiver is None:
            self.start_receiver("ok")
        else:
            self.receiver.set_mode("ok")
        all_arrived_s = drained_s = None
        stats: dict[str, Any] = {}
        deadline = back + self.args.recovery_timeout
        while time.perf_counter() < deadline:
            unique, _ = self.counter.counts()
            now = time.perf_counter() - back
            if all_arrived_s is None and unique >= made:
                all_arrived_s = now
            stats = export_stats(self.app_port)
            if stats["queued"] == 0:
                drained_s = time.perf_counter() - back
                break
            time.sleep(0.2)
        unique, total = self.counter.counts()
        if all_arrived_s is None and unique >= made:
            all_arrived_s = time.perf_counter() - back
        return {
            "drained_s": drained_s,
            "all_arrived_s": all_arrived_s,
            "received_unique": unique,
            "received_total": total,
            "stats_after": stats,
        }

    def stop(self) -> int | None:
        code = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                code = self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                code = self.proc.wait()
        if self.receiver is not None:
            self.receiver.stop()
        return code

    def execute(self) -> dict[str, Any]:
        scenario = self.scenario
        if scenario.mode is not None:
            self.start_receiver(scenario.mode, scenario.delay, scenario.retry_after)
        try:
            pid = self.start_app()
            load, watched = self.drive_load(pid)
            time.sleep(0.3)  # the last responses' spans end just after the bytes are sent
            at_end = export_stats(self.app_port)
            memory = proc_status(pid)
            lines_during = autotrace_lines(self.stderr_path)
            received_during = self.counter.counts()[0]
            recovery = self.recover(at_end["made"])
        finally:
            exit_code = self.stop()
        return summarize(
            scenario,
            self.protocol,
            load,
            watched,
            at_end,
            memory,
            lines_during,
            received_during,
            recovery,
            autotrace_lines(self.stderr_path),
            exit_code,
        )


def summarize(
    scenario: Scenario,
    protocol: str,
    load: dict[str, Any],
    watched: dict[str, Any],
    at_end: dict[str, Any],
    memory: dict[str, int],
    lines_during: list[str],
    received_during: int,
    recovery: dict[str, Any],
    lines_all: list[str],
    exit_code: int | None,
) -> dict[str, Any]:
    samples = load["samples"]
    latency = [s[1] * 1000 for s in samples]
    from_due = [s[2] * 1000 for s in samples]
    failures = sum(1 for s in samples if s[3] != 200)
    warnings = [line for line in lines_during if line.startswith("autotrace: WARNING")]
    return {
        "protocol": protocol,
        "scenario": scenario.name,
        "what": scenario.what,
        "requests": len(samples),
        "failures": failures,
        "errors": load["errors"],
        "statuses": {str(k): sum(1 for s in samples if s[3] == k) for k in sorted({s[3] for s in samples})},
        "achieved_rps": len(samples) / load["measured_s"],
        "p50_ms": percentile(latency, 50),
        "p90_ms": percentile(latency, 90),
        "p99_ms": percentile(latency, 99),
        "max_ms": max(latency, default=float("nan")),
        "p99_from_due_ms": percentile(from_due, 99),
        "max_from_due_ms": max(from_due, default=float("nan")),
        "late_sends_over_10ms": sum(1 for s in samples if s[0] > 0.010),
        "rss_end_kb": memory.get("VmRSS"),
        "rss_peak_kb": memory.get("VmHWM"),
        "rss_max_sampled_kb": watched["rss_max_kb"],
        "app_cpu_s": watched["cpu_s"],
        "app_cpu_pct": 100 * watched["cpu_s"] / watched["wall_s"],
        "app_thread_cpu_s": watched["thread_cpu_s"],
        "exporter_cpu_pct": 100
        * sum(t for name, t in watched["thread_cpu_s"].items() if name.startswith("autotrace-"))
        / watched["wall_s"],
        "receiver_cpu_pct": 100 * watched["receiver_cpu_s"] / watched["wall_s"],
        "export_requests_during_load": watched["attempts"],
        "stats_at_end": at_end,
        "received_during_load": received_during,
        "warnings_during_load": len(warnings),
        "autotrace_lines_during_load": lines_during,
        "autotrace_lines_all": lines_all,
        "recovery": recovery,
        "made": at_end["made"],
        "delivered": recovery["received_unique"],
        "dropped_total": recovery["stats_after"].get("dropped", 0),
        "app_exit_code": exit_code,
    }


# --------------------------------------------------------------------------------------------------
# rounds, report


def plan(names: list[str], per_round: int, repeat: int) -> list[list[str]]:
    """Rounds of [healthy, fault, fault, ...]: each fault is compared with the healthy run before it."""
    faults = [n for n in names if n != "healthy"]
    rounds = []
    for _ in range(repeat):
        if not faults:
            rounds.append(["healthy"])
        for i in range(0, len(faults), per_round):
            rounds.append(["healthy", *faults[i : i + per_round]])
    return rounds


def compare(runs: list[dict[str, Any]]) -> None:
    """Set each run's ratios against the healthy run of its round."""
    for run in runs:
        base = next(r for r in runs if r["round"] == run["round"] and r["protocol"] == run["protocol"])
        run["p99_ratio"] = run["p99_ms"] / base["p99_ms"]
        run["p99_from_due_ratio"] = run["p99_from_due_ms"] / base["p99_from_due_ms"]
        run["rss_delta_mb"] = ((run["rss_end_kb"] or 0) - (base["rss_end_kb"] or 0)) / 1024


HEADER = (
    f"{'proto':5} {'rd':>2} {'scenario':9} {'reqs':>5} {'fail':>4} {'p50':>6} {'p99':>6} {'p99x':>5} "
    f"{'p99due':>7} {'max':>7} {'cpu%':>5} {'exp%':>4} {'rcv%':>4} {'tries':>5} "
    f"{'rssMB':>6} {'dMB':>5} {'bufMB':>5} {'held':>6} {'drop':>5} "
    f"{'warn':>4} {'back s':>6} {'delivered/made':>15} {'dup':>5}"
)


def row(run: dict[str, Any]) -> str:
    at_end, rec = run["stats_at_end"], run["recovery"]
    back = rec["drained_s"]
    return (
        f"{run['protocol']:5} {run['round']:>2} {run['scenario']:9} "
        f"{run['requests']:>5} {run['failures']:>4} "
        f"{run['p50_ms']:6.1f} {run['p99_ms']:6.1f} {run['p99_ratio']:5.2f} {run['p99_from_due_ms']:7.1f} "
        f"{run['max_ms']:7.1f} {run['app_cpu_pct']:5.0f} {run['exporter_cpu_pct']:4.0f} "
        f"{run['receiver_cpu_pct']:4.0f} "
        f"{run['export_requests_during_load']:>5} {(run['rss_end_kb'] or 0) / 1024:6.1f} "
        f"{run['rss_delta_mb']:+5.1f} {at_end['buffered_bytes'] / 2**20:5.1f} {at_end['queued']:>6} "
        f"{at_end['dropped']:>5} {run['warnings_during_load']:>4} "
        f"{'never' if back is None else f'{back:.1f}':>6} "
        f"{run['delivered']:>7}/{run['made']:<7} {rec['received_total'] - rec['received_unique']:>5}"
    )


def report(runs: list[dict[str, Any]]) -> None:
    print()
    print(HEADER)
    print("-" * len(HEADER))
    for run in runs:
        print(row(run))
    print()
    for protocol in dict.fromkeys(r["protocol"] for r in runs):
        mine = [r for r in runs if r["protocol"] == protocol]
        healthy = [r for r in mine if r["scenario"] == "healthy"]
        p99s = [r["p99_ms"] for r in healthy]
        print(f"{protocol}: healthy p99 ranged {min(p99s):.1f}-{max(p99s):.1f} ms over {len(p99s)} runs")
        for run in mine:
            if run["scenario"] != "healthy":
                print("  " + verdict(run, healthy))


def verdict(run: dict[str, Any], healthy: list[dict[str, Any]]) -> str:
    """Facts first; LOOK when a request failed, a span was lost, or latency left the healthy runs' band
    by more than NOISE (their own spread on a shared 2-core machine is about that wide)."""
    high = max(r["p99_ms"] for r in healthy)
    high_due = max(r["p99_from_due_ms"] for r in healthy)
    look = run["p99_ms"] > NOISE * high or run["p99_from_due_ms"] > NOISE * high_due
    notes = [
        f"p99 {run['p99_ms']:.1f} ms ({run['p99_ratio']:.2f}x its round's healthy; "
        + (
            "within the healthy runs"
            if run["p99_ms"] <= high
            else f"{run['p99_ms'] / high - 1:+.0%} on the highest"
        )
        + ")"
    ]
    if run["failures"]:
        look = True
        notes.append(f"{run['failures']} failed requests {run['errors'] or run['statuses']}")
    notes.append(f"RSS {run['rss_delta_mb']:+.1f} MB")
    dropped = run["dropped_total"]
    lost = run["made"] - dropped - run["delivered"]
    back = run["recovery"]["drained_s"]
    if lost or back is None:
        look = True
        notes.append(f"{lost} of {run['made']} spans neither delivered nor counted as dropped")
    elif dropped:
        notes.append(
            f"{run['delivered']} of {run['made']} spans delivered {back:.1f} s after the return, "
            f"{dropped} dropped (and counted)"
        )
    else:
        notes.append(f"all {run['made']} spans delivered {back:.1f} s after the return")
    return f"{'LOOK' if look else 'ok':4} {run['scenario']:9} " + "; ".join(notes)


# --------------------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--protocol", choices=("http", "grpc", "both"), default="both")
    parser.add_argument("--scenarios", default="healthy,down,refusing,slow,5xx,429", help="comma-separated")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured load per run")
    parser.add_argument("--warmup", type=float, default=3.0, help="load before measuring, discarded")
    parser.add_argument("--rate", type=float, default=300.0, help="requests a second, all threads")
    parser.add_argument("--threads", type=int, default=4, help="client connections")
    parser.add_argument("--per-round", type=int, default=2, help="fault runs after each healthy run")
    parser.add_argument("--repeat", type=int, default=1, help="repeat the whole plan")
    parser.add_argument("--slow-delay", type=float, default=30.0, help="the slow receiver's delay, s")
    parser.add_argument("--retry-after", type=float, default=5.0, help="the 429 receiver's Retry-After, s")
    parser.add_argument("--recovery-timeout", type=float, default=90.0, help="wait this long for delivery")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set in the app's environment (repeatable), e.g. AUTOTRACE_EXPORT_BUFFER_SIZE=2MiB",
    )
    parser.add_argument("--json", type=Path, help="write every run's numbers here")
    args = parser.parse_args(argv)
    known = scenarios(args.slow_delay, args.retry_after)
    args.names = [n.strip() for n in args.scenarios.split(",") if n.strip()]
    unknown = [n for n in args.names if n not in known]
    if unknown:
        parser.error(f"unknown scenarios {unknown}; known: {', '.join(known)}")
    bad = [item for item in args.env if "=" not in item]
    if bad:
        parser.error(f"--env wants NAME=VALUE, not {bad}")
    args.known = known
    return args


def main(argv: list[str]) -> int:
    if argv[:1] == ["_load"]:
        load_main(argv[1:])
        return 0
    args = parse_args(argv)
    protocols = ["http", "grpc"] if args.protocol == "both" else [args.protocol]
    rounds = plan(args.names, args.per_round, args.repeat)
    started = time.time()
    source = source_state()  # at the start: others may change the tree while this runs
    load_before = os.getloadavg()
    print(
        f"collector faults: {args.rate:g} req/s from {args.threads} connections, {args.warmup:g} s warm-up + "
        f"{args.seconds:g} s measured per run; rounds {rounds}; protocols {protocols}",
        flush=True,
    )
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="collector-faults-") as workdir:
        for protocol in protocols:
            for number, names in enumerate(rounds, 1):
                for name in names:
                    result = Run(args.known[name], protocol, args, Path(workdir)).execute()
                    result["round"] = number
                    runs.append(result)
                    print(
                        f"  {protocol} round {number} {name:9} p99 {result['p99_ms']:6.1f} ms  "
                        f"failures {result['failures']}  delivered {result['delivered']}/{result['made']}  "
                        f"back in {result['recovery']['drained_s']}",
                        flush=True,
                    )
    compare(runs)
    report(runs)
    elapsed = time.time() - started
    print(f"\n{elapsed:.0f} s in all; load average {load_before[0]:.2f} -> {os.getloadavg()[0]:.2f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        document = {
            "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "options": {k: v for k, v in vars(args).items() if k not in ("known", "json")},
            "elapsed_s": elapsed,
            "source": source,
            "runs": runs,
        }
        args.json.write_text(json.dumps(document, indent=1, default=str))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
