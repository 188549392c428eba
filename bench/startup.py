"""Start-up cost of autotrace, beside the upstream agent (opentelemetry-instrument), in the same run.

    ./bench/setup.sh && .venv/bin/python bench/startup.py [--rounds N] [--json out.json]

Times whole processes (launch to exit, wall clock) for two workloads, ``python -c pass`` and
``python -c "import bench.apps.starlette_app"``, under these modes:

    none           the project venv's python, plain: autotrace's baseline
    autotrace-env  the same python with PYTHONPATH=$(autotrace bootstrap-path), as in a container
    autotrace      .venv/bin/autotrace python ...: the launcher (a console script) execs the command
    otel-none      bench/.venv-otel's python, plain: the upstream agent's baseline
    otel           bench/.venv-otel/bin/opentelemetry-instrument python ...

Rounds are interleaved (each round runs every workload under every mode once, in a shuffled order),
so a machine that gets busier or quieter during the run moves every mode alike. Warm-up rounds are
discarded. Each tool is compared with a plain run of its own venv's interpreter: the delta is the
median over rounds of (mode - baseline) in that round, the ratio is median / baseline median.

Then one run per mode with ``-X importtime`` tells which modules each mode imports for
``python -c pass``, what imported them and what they cost.

This is a report, not a test: it exits 0 whatever the numbers (1 only when it cannot run at all).
Standard library only; Python 3.9+; POSIX.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

try:
    import resource
except ImportError:  # not POSIX: no CPU times
    resource = None  # type: ignore[assignment]

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PROJECT_VENV = ROOT / ".venv"
OTEL_VENV = BENCH / ".venv-otel"

WORKLOADS: dict[str, list[str]] = {
    "pass": ["-c", "pass"],
    "starlette": ["-c", "import bench.apps.starlette_app"],
}
WORKLOAD_TITLES = {
    "pass": "python -c pass",
    "starlette": 'python -c "import bench.apps.starlette_app"',
}
# The targets: what autotrace may add to each workload, in ms.
TARGETS_MS = {"pass": 30.0, "starlette": 250.0}

# Must not be imported by `python -c pass` under autotrace: the SDK is built on first need only.
FORBIDDEN = ("opentelemetry.sdk", "grpc", "google.protobuf", "wrapt")
# Worth naming when a mode imports them: slow to import, or a sign that more is set up than needed.
WATCHED = (
    *FORBIDDEN,
    "opentelemetry",
    "requests",
    "urllib3",
    "importlib.metadata",
    "pkg_resources",
    "asyncio",
    "ssl",
    "socket",
    "logging",
    "typing",
    "dataclasses",
    "inspect",
    "email",
    "http.client",
    "json",
    "subprocess",
    "pathlib",
    "urllib.parse",
    "re",
    "threading",
)

# Variables set for every run. The endpoint has nothing listening: nothing is exported at start-up.
BENCH_ENV = {
    "OTEL_TRACES_EXPORTER": "otlp",
    "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
    "OTEL_METRICS_EXPORTER": "none",
    "OTEL_LOGS_EXPORTER": "none",
    "OTEL_SERVICE_NAME": "bench",
}
# Removed from the inherited environment: they would change what the interpreter loads or compiles.
STRIPPED = (
    "PYTHONDONTWRITEBYTECODE",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "PYTHONPROFILEIMPORTTIME",
    "PYTHONINSPECT",
    "PYTHONVERBOSE",
    "VIRTUAL_ENV",
)

PACKAGES = (
    "autotrace",
    "opentelemetry-api",
    "opentelemetry-sdk",
    "opentelemetry-exporter-otlp",
    "opentelemetry-instrumentation",
    "opentelemetry-distro",
    "opentelemetry-instrumentation-starlette",
    "starlette",
    "wrapt",
    "protobuf",
    "grpcio",
)


class BenchError(Exception):
    pass


class Mode:
    """How to run a workload: the command in front of it, the venv, extra environment."""

    def __init__(
        self,
        name: str,
        venv: Path,
        baseline: str | None,
        launcher: str | None = None,
        extra_env: dict[str, str] | None = None,
        description: str = "",
    ) -> None:
        self.name = name
        self.venv = venv
        self.baseline = baseline
        self.launcher = launcher
        self.extra_env = extra_env or {}
        self.description = description

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def argv(self, args: list[str]) -> list[str]:
        if self.launcher is None:
            return [str(self.python), *args]
        # "python" as a person types it: the launcher finds the venv's python on PATH (set below).
        return [str(self.venv / "bin" / self.launcher), "python", *args]

    def env(self, base: dict[str, str]) -> dict[str, str]:
        env = dict(base)
        env["PATH"] = os.pathsep.join([str(self.venv / "bin"), base.get("PATH", os.defpath)])
        env["VIRTUAL_ENV"] = str(self.venv)  # as an activated venv has it
        env.update(self.extra_env)
        return env

    def is_autotrace(self) -> bool:
        return self.name.startswith("autotrace")


# ---------------------------------------------------------------------------------------------------
# environment and set-up checks


def base_environment(protocol: str | None) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AUTOTRACE_")) and k not in STRIPPED
    }
    env.update(BENCH_ENV)
    if protocol:
        env["OTEL_EXPORTER_OTLP_PROTOCOL"] = protocol
    return env


def make_modes(base: dict[str, str], with_otel: bool) -> list[Mode]:
    autotrace = PROJECT_VENV / "bin" / "autotrace"
    probe = subprocess.run(
        [str(autotrace), "bootstrap-path"],
        env=base,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    folder = probe.stdout.strip()
    if probe.returncode != 0 or not folder:
        raise BenchError(f"`autotrace bootstrap-path` failed ({probe.returncode}): {probe.stderr.strip()}")
    modes = [
        Mode("none", PROJECT_VENV, None, description="project venv python, plain"),
        Mode(
            "autotrace-env",
            PROJECT_VENV,
            "none",
            extra_env={"PYTHONPATH": folder},
            description=f"PYTHONPATH={folder}",
        ),
        Mode(
            "autotrace", PROJECT_VENV, "none", launcher="autotrace", description=".venv/bin/autotrace python"
        ),
    ]
    if with_otel:
        modes += [
            Mode("otel-none", OTEL_VENV, None, description="bench/.venv-otel python, plain"),
            Mode(
                "otel",
                OTEL_VENV,
                "otel-none",
                launcher="opentelemetry-instrument",
                description="bench/.venv-otel/bin/opentelemetry-instrument python",
            ),
        ]
    return modes


def check_setup(skip_otel: bool) -> bool:
    """Whether the otel venv is usable; raises when the project venv is not."""
    if not (PROJECT_VENV / "bin" / "autotrace").exists():
        raise BenchError(f"{PROJECT_VENV}/bin/autotrace is missing: run ./bench/setup.sh first")
    if skip_otel:
        return False
    if not (OTEL_VENV / "bin" / "opentelemetry-instrument").exists():
        print(
            f"note: {OTEL_VENV}/bin/opentelemetry-instrument is missing (run ./bench/setup.sh): "
            "the otel modes are skipped",
            file=sys.stderr,
        )
        return False
    return True


def package_versions(python: Path) -> dict[str, str]:
    code = textwrap.dedent(
        """
        import json, sys
        from importlib import metadata
        out = {}
        for name in sys.argv[1:]:
            try:
                out[name] = metadata.version(name)
            except metadata.PackageNotFoundError:
                pass
        out["python"] = sys.version.split()[0]
        print(json.dumps(out))
        """
    )
    proc = subprocess.run(
        [str(python), "-c", code, *PACKAGES], capture_output=True, text=True, check=False, cwd=ROOT
    )
    try:
        return dict(json.loads(proc.stdout))
    except ValueError:
        return {}


# ---------------------------------------------------------------------------------------------------
# timing


def run_once(mode: Mode, workload: str, env: dict[str, str]) -> tuple[float, float | None, str]:
    """One process: (wall ms, CPU ms of the child or None, its standard error)."""
    argv = mode.argv(WORKLOADS[workload])
    before = resource.getrusage(resource.RUSAGE_CHILDREN) if resource else None
    started = time.perf_counter()
    proc = subprocess.run(
        argv,
        env=env,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
    )
    wall = (time.perf_counter() - started) * 1000.0
    cpu = None
    if resource and before is not None:
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000.0
    stderr = proc.stderr.decode(errors="replace")
    if proc.returncode != 0:
        raise BenchError(
            f"{mode.name} / {workload}: exit {proc.returncode}: {' '.join(argv)}\n{stderr[-2000:]}"
        )
    return wall, cpu, stderr


def measure(
    modes: list[Mode], env: dict[str, str], rounds: int, warmup: int, seed: int
) -> tuple[dict[str, dict[str, list[float]]], dict[str, dict[str, list[float]]], dict[str, str]]:
    rng = random.Random(seed)
    envs = {m.name: m.env(env) for m in modes}
    pairs = [(w, m) for w in WORKLOADS for m in modes]
    wall: dict[str, dict[str, list[float]]] = {w: {m.name: [] for m in modes} for w in WORKLOADS}
    cpu: dict[str, dict[str, list[float]]] = {w: {m.name: [] for m in modes} for w in WORKLOADS}
    notes: dict[str, str] = {}
    total = warmup + rounds
    progress = sys.stderr.isatty()
    for i in range(total):
        rng.shuffle(pairs)
        if progress:
            label = f"warm-up {i + 1}/{warmup}" if i < warmup else f"round {i - warmup + 1}/{rounds}"
            sys.stderr.write(f"\r{label}   ")
            sys.stderr.flush()
        for workload, mode in pairs:
            ms, cpu_ms, stderr = run_once(mode, workload, envs[mode.name])
            if stderr.strip():
                notes.setdefault(f"{mode.name} / {workload}", stderr.strip()[-500:])
            if i >= warmup:
                wall[workload][mode.name].append(ms)
                if cpu_ms is not None:
                    cpu[workload][mode.name].append(cpu_ms)
    if progress:
        sys.stderr.write("\r" + " " * 30 + "\r")
    return wall, cpu, notes


def p90(values: list[float]) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=10, method="inclusive")[-1]


def summarize(
    modes: list[Mode], wall: dict[str, dict[str, list[float]]], cpu: dict[str, dict[str, list[float]]]
) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for workload in WORKLOADS:
        for mode in modes:
            samples = wall[workload][mode.name]
            row: dict[str, object] = {
                "workload": workload,
                "mode": mode.name,
                "baseline": mode.baseline,
                "n": len(samples),
                "median_ms": statistics.median(samples),
                "p90_ms": p90(samples),
                "cpu_median_ms": statistics.median(cpu[workload][mode.name])
                if cpu[workload][mode.name]
                else None,
            }
            if mode.baseline is not None:
                base = wall[workload][mode.baseline]
                # Paired by round: both ran in the same round, so they saw the same machine.
                deltas = [a - b for a, b in zip(samples, base)]
                row["delta_median_ms"] = statistics.median(deltas)
                row["delta_p90_ms"] = p90(deltas)
                row["ratio"] = statistics.median(samples) / statistics.median(base)
                if mode.is_autotrace():
                    target = TARGETS_MS[workload]
                    row["target_ms"] = target
                    row["target_met"] = row["delta_median_ms"] <= target  # type: ignore[operator]
            rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------------------
# what gets imported

_IMPORTTIME = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( +)(\S+)\s*$")
_PRINT_MODULES = "import sys; sys.stdout.write('\\n'.join(sorted(sys.modules)))"


class ImportRecord:
    """One ``-X importtime`` line."""

    def __init__(self, name: str, self_us: int, cumulative_us: int, depth: int) -> None:
        self.name = name
        self.self_us = self_us
        self.cumulative_us = cumulative_us
        self.depth = depth
        # The imports that were running when this one happened, outermost first. A module imported
        # by a function call (not at module level) shows under whichever import was running the call.
        self.chain: list[str] = []

    @property
    def ms(self) -> float:
        return self.cumulative_us / 1000.0


def parse_importtime(stderr: str) -> list[ImportRecord]:
    """``-X importtime`` lines in order, each with the chain of imports it was made under.

    A line is printed when its import ends, so an import's children come before it, one level
    deeper: the parent of a line is the next line that is less deep.
    """
    records: list[ImportRecord] = []
    for line in stderr.splitlines():
        match = _IMPORTTIME.match(line)
        if match:
            self_us, cumulative_us, indent, name = match.groups()
            records.append(ImportRecord(name, int(self_us), int(cumulative_us), (len(indent) - 1) // 2))
    open_parents: list[ImportRecord] = []  # walking backwards, a parent is met before its children
    for record in reversed(records):
        while open_parents and open_parents[-1].depth >= record.depth:
            open_parents.pop()
        record.chain = [p.name for p in open_parents]
        open_parents.append(record)
    return records


class Probe:
    """One run of a workload with -X importtime, listing sys.modules at the end."""

    def __init__(self, mode: Mode, workload: str, env: dict[str, str]) -> None:
        code = _PRINT_MODULES
        if workload == "starlette":
            code = "import bench.apps.starlette_app; " + code
        argv = mode.argv(["-X", "importtime", "-c", code])
        proc = subprocess.run(argv, env=mode.env(env), cwd=ROOT, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise BenchError(
                f"module probe {mode.name} / {workload}: exit {proc.returncode}\n{proc.stderr[-2000:]}"
            )
        self.modules = sorted(set(proc.stdout.split()))
        self.records = {r.name: r for r in parse_importtime(proc.stderr)}
        site_custom = self.records.get("sitecustomize")
        self.sitecustomize_ms = site_custom.ms if site_custom else None

    def present(self, name: str) -> bool:
        return any(m == name or m.startswith(name + ".") for m in self.modules)


def launcher_probe(mode: Mode, env: dict[str, str]) -> dict[str, object]:
    """What the launcher script imports before it execs: ``python -X importtime LAUNCHER true``."""
    assert mode.launcher is not None
    script = mode.venv / "bin" / mode.launcher
    argv = [str(mode.python), "-X", "importtime", str(script), "true"]
    proc = subprocess.run(argv, env=mode.env(env), cwd=ROOT, capture_output=True, text=True, check=False)
    records = parse_importtime(proc.stderr)
    # The script's own imports are the top-level ones after `site` (the interpreter's start-up).
    after_site = next((i for i, r in enumerate(records) if r.depth == 0 and r.name == "site"), -1) + 1
    own = records[after_site:]
    top = [r for r in own if r.depth == 0]
    heaviest = sorted((r for r in own if r.depth > 0), key=lambda r: r.cumulative_us, reverse=True)[:6]
    return {
        "exit": proc.returncode,
        "modules": len(own),
        "ms": sum(r.ms for r in top),
        "top_level": [(r.name, r.ms) for r in top],
        "heaviest": [(r.name, r.ms) for r in heaviest],
    }


def import_report(modes: list[Mode], env: dict[str, str]) -> tuple[dict[str, object], list[str]]:
    """What each mode imports: the lines to print, and the same as JSON-able data."""
    probes = {(m.name, w): Probe(m, w, env) for m in modes for w in WORKLOADS}
    lines: list[str] = []
    data: dict[str, dict[str, object]] = {m.name: {} for m in modes}

    lines.append("Imports, from one extra run per mode with -X importtime (not part of the timings above).")
    lines.append("")
    lines.append("Modules in sys.modules at exit; sitecustomize = its cumulative import time under -c pass:")
    lines.append(f"  {'mode':<14} {'pass':>6} {'starlette':>10} {'sitecustomize':>14}")
    for mode in modes:
        p, s = probes[(mode.name, "pass")], probes[(mode.name, "starlette")]
        sc = fmt(p.sitecustomize_ms) + " ms" if p.sitecustomize_ms is not None else "-"
        lines.append(f"  {mode.name:<14} {len(p.modules):>6} {len(s.modules):>10} {sc:>14}")
        for workload in WORKLOADS:
            probe = probes[(mode.name, workload)]
            data[mode.name][workload] = {
                "module_count": len(probe.modules),
                "sitecustomize_ms": probe.sitecustomize_ms,
                "heavy_imported": [name for name in FORBIDDEN if probe.present(name)],
                "modules": probe.modules,
            }
    lines.append("")

    plain = set(probes[("none", "pass")].modules)
    shown: list[str] | None = None
    for mode in (m for m in modes if m.is_autotrace()):
        probe = probes[(mode.name, "pass")]
        added = sorted(set(probe.modules) - plain)
        lines.append(f"{mode.name}: `python -c pass` imports {len(added)} modules more than plain python:")
        if added == shown:
            lines.append("  the same modules as above")
        else:
            lines.extend(
                textwrap.wrap(" ".join(added), width=104, initial_indent="  ", subsequent_indent="  ")
            )
            shown = added
        bad = [name for name in FORBIDDEN if probe.present(name)]
        verdict = "PASS" if not bad else "FAIL"
        found = "none imported" if not bad else ", ".join(bad) + " imported"
        lines.append(f"  must not be imported: {', '.join(FORBIDDEN)} -> {verdict}: {found}")
        watched = [w for w in WATCHED if w in added]
        if watched:
            lines.append(
                "  of note among them (cumulative import time, and the imports running when it happened):"
            )
            for name in watched:
                rec = probe.records.get(name)
                if rec is None:
                    lines.append(f"    {name:<16} (no -X importtime line)")
                    continue
                chain = " > ".join(rec.chain[-4:]) or "(top level)"
                lines.append(f"    {name:<16} {rec.ms:6.1f} ms   {chain}")
        lines.append("")
        data[mode.name]["pass"].update(  # type: ignore[attr-defined]
            {"added_modules": added, "forbidden_imported": bad, "forbidden_check": verdict}
        )

    lines.append("Heavy modules (" + ", ".join(FORBIDDEN) + ") imported, per workload:")
    for mode in modes:
        cells = []
        for workload in WORKLOADS:
            found_here = [name for name in FORBIDDEN if probes[(mode.name, workload)].present(name)]
            cells.append(f"{workload}: {', '.join(found_here) if found_here else '(none)'}")
        lines.extend(
            textwrap.wrap(
                f"{mode.name:<14} " + "; ".join(cells),
                width=106,
                initial_indent="  ",
                subsequent_indent=" " * 17,
            )
        )
    if "otel" in data and probes[("otel", "pass")].present("starlette"):
        lines.append(
            "  note: under opentelemetry-instrument, `python -c pass` already imports starlette (the"
        )
        lines.append(
            "  instrumentor imports its library at start-up): its pass delta includes importing starlette."
        )
    if not any(probes[(m.name, "starlette")].present("opentelemetry.sdk") for m in modes if m.is_autotrace()):
        lines.append(
            "  note: importing Starlette did not make autotrace build the SDK (no starlette instrumentation"
        )
        lines.append(
            "  is registered, or it is disabled): autotrace's starlette numbers are its bootstrap only."
        )
    lines.append("")

    launchers = [m for m in modes if m.launcher is not None]
    if launchers:
        lines.append("Launchers: what the launcher process itself imports before it execs the command")
        lines.append("(python -X importtime LAUNCHER true):")
        for mode in launchers:
            info = launcher_probe(mode, env)
            data[mode.name]["launcher"] = info
            lines.append(
                f"  {mode.launcher}: {info['modules']} modules, {fmt(info['ms'])} ms of imports"
                + (f" (exit {info['exit']})" if info["exit"] else "")
            )
            tops = ", ".join(f"{n} {ms:.1f}" for n, ms in info["top_level"])  # type: ignore[attr-defined]
            heavy = ", ".join(f"{n} {ms:.1f}" for n, ms in info["heaviest"])  # type: ignore[attr-defined]
            lines.extend(
                textwrap.wrap(
                    f"top level (ms): {tops}", width=104, initial_indent="    ", subsequent_indent="      "
                )
            )
            lines.extend(
                textwrap.wrap(
                    f"heaviest inside (ms): {heavy}",
                    width=104,
                    initial_indent="    ",
                    subsequent_indent="      ",
                )
            )
    return dict(data), lines


# ---------------------------------------------------------------------------------------------------
# output


def fmt(value: object, spec: str = ".1f", signed: bool = False) -> str:
    if not isinstance(value, (int, float)):
        return "-"
    return format(value, ("+" if signed else "") + spec)


def table(rows: list[dict[str, object]]) -> list[str]:
    header = (
        f"{'workload':<10} {'mode':<14} {'median':>8} {'p90':>8} {'cpu':>8} {'delta':>8} "
        f"{'delta p90':>9} {'ratio':>6}  target (added)"
    )
    out = [header, "-" * len(header)]
    previous = None
    for row in rows:
        if previous is not None and row["workload"] != previous:
            out.append("")
        previous = row["workload"]
        if "target_ms" in row:
            target = f"<= {row['target_ms']:.0f} ms  " + ("PASS" if row["target_met"] else "FAIL")
        elif row["baseline"] is not None:
            target = "(reference)"
        else:
            target = "baseline"
        ratio = f"{row['ratio']:.2f}x" if isinstance(row.get("ratio"), float) else "-"
        out.append(
            f"{row['workload']:<10} {row['mode']:<14} {fmt(row['median_ms']):>8} {fmt(row['p90_ms']):>8} "
            f"{fmt(row['cpu_median_ms']):>8} {fmt(row.get('delta_median_ms'), signed=True):>8} "
            f"{fmt(row.get('delta_p90_ms'), signed=True):>9} {ratio:>6}  {target}"
        )
    return out


def comparison(rows: list[dict[str, object]]) -> list[str]:
    by = {(r["workload"], r["mode"]): r for r in rows}
    out = []
    for workload in WORKLOADS:
        env_mode, launcher = by.get((workload, "autotrace-env")), by.get((workload, "autotrace"))
        otel = by.get((workload, "otel"))
        if env_mode and launcher:
            cost = launcher["median_ms"] - env_mode["median_ms"]  # type: ignore[operator]
            out.append(
                f"  {workload:<10} the autotrace launcher itself (autotrace - autotrace-env): {cost:+.1f} ms"
            )
        if otel is None:
            continue
        o = otel["delta_median_ms"]
        for mode in ("autotrace-env", "autotrace"):
            a = by[(workload, mode)]["delta_median_ms"]
            if isinstance(a, float) and isinstance(o, float):
                times = f"{o / a:.1f}x autotrace's" if a >= 1.0 else "n/a: autotrace adds < 1 ms"
                out.append(
                    f"  {workload:<10} {mode:<14} adds {a:+7.1f} ms; "
                    f"opentelemetry-instrument adds {o:+7.1f} ms ({times})"
                )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20, help="measured rounds (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="discarded rounds first (default 3)")
    parser.add_argument("--seed", type=int, default=None, help="shuffle seed (default: random)")
    parser.add_argument("--json", type=Path, default=None, help="also write every sample and result here")
    parser.add_argument(
        "--protocol",
        default=None,
        help="set OTEL_EXPORTER_OTLP_PROTOCOL for every run (default: unset, each tool's own default)",
    )
    parser.add_argument("--no-otel", action="store_true", help="skip the opentelemetry-instrument modes")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.warmup < 0:
        parser.error("--rounds must be >= 1 and --warmup >= 0")
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)

    try:
        with_otel = check_setup(args.no_otel)
        env = base_environment(args.protocol)
        modes = make_modes(env, with_otel)
        versions = {"project venv": package_versions(PROJECT_VENV / "bin" / "python")}
        if with_otel:
            versions["otel venv"] = package_versions(OTEL_VENV / "bin" / "python")
        load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
        started = time.time()
        wall, cpu, notes = measure(modes, env, args.rounds, args.warmup, seed)
        elapsed = time.time() - started
        load_after = os.getloadavg() if hasattr(os, "getloadavg") else None
        rows = summarize(modes, wall, cpu)
        modules, module_lines = import_report(modes, env)
    except BenchError as exc:
        print(f"startup.py: {exc}", file=sys.stderr)
        return 1

    now = datetime.datetime.now().astimezone()
    print(f"autotrace start-up benchmark, {now:%Y-%m-%d %H:%M %Z}")
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, python {platform.python_version()}")
    if load_before and load_after:
        print(f"load average (1 min): {load_before[0]:.2f} before, {load_after[0]:.2f} after")
    print(
        f"rounds: {args.rounds} measured + {args.warmup} warm-up, interleaved, seed {seed}; "
        f"{elapsed:.0f} s in all"
    )
    for label, found in versions.items():
        print(f"{label}: " + ", ".join(f"{k} {v}" for k, v in found.items()))
    print(
        "env: "
        + " ".join(f"{k}={v}" for k, v in BENCH_ENV.items())
        + (f" OTEL_EXPORTER_OTLP_PROTOCOL={args.protocol}" if args.protocol else "")
    )
    print("modes:")
    for mode in modes:
        print(f"  {mode.name:<14} {mode.description}")
    print()
    print("wall time per process in ms; cpu = user+sys of the process; delta = median over rounds of")
    print("(mode - its own venv's plain python); ratio = median / baseline median")
    for workload in WORKLOADS:
        print(f"  {workload:<10} = {WORKLOAD_TITLES[workload]}")
    print()
    for line in table(rows):
        print(line)
    lines = comparison(rows)
    if lines:
        print()
        print("added start-up time (median deltas), autotrace beside opentelemetry-instrument:")
        for line in lines:
            print(line)
    print()
    for line in module_lines:
        print(line)
    if notes:
        print()
        print("standard error seen (first occurrence per mode / workload):")
        for key, text in notes.items():
            print(f"  {key}: {text.splitlines()[-1][:200]}")

    if args.json:
        report = {
            "date": now.isoformat(timespec="seconds"),
            "command": [sys.executable, *sys.argv],
            "rounds": args.rounds,
            "warmup": args.warmup,
            "seed": seed,
            "machine": {
                "platform": platform.platform(),
                "cpus": os.cpu_count(),
                "load_before": load_before,
                "load_after": load_after,
            },
            "versions": versions,
            "env": {**BENCH_ENV, **({"OTEL_EXPORTER_OTLP_PROTOCOL": args.protocol} if args.protocol else {})},
            "modes": {m.name: {"baseline": m.baseline, "description": m.description} for m in modes},
            "targets_ms": TARGETS_MS,
            "summary": rows,
            "samples_ms": wall,
            "cpu_ms": cpu,
            "modules": modules,
            "stderr": notes,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
