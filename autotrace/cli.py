"""The ``autotrace`` command: run any command with tracing, ``doctor``, ``bootstrap-path``.

``autotrace [options] COMMAND [ARGS...]`` prepends only the bootstrap folder to PYTHONPATH (keeping
what was there) and replaces itself with COMMAND, so exit code, standard streams and signals are the
command's own.
"""

from __future__ import annotations

import os
import sys

from autotrace._version import __version__

# The launcher runs before every traced command: it imports nothing it can do without (no pathlib,
# shutil or typing), so it adds little more than one interpreter start-up.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, NoReturn

USAGE = """\
usage: autotrace [OPTIONS] COMMAND [ARGS...]
       autotrace doctor [--no-network]
       autotrace bootstrap-path
       autotrace --version | --help

Runs COMMAND (python app.py, python -m mod, uvicorn app:app, gunicorn app:app, any console script)
with tracing: every Python process it starts is traced, nothing in the app changes.

options (each sets the standard variable for COMMAND):
  --service-name NAME      OTEL_SERVICE_NAME
  --endpoint URL           OTEL_EXPORTER_OTLP_ENDPOINT
  --protocol PROTOCOL      OTEL_EXPORTER_OTLP_PROTOCOL (http/protobuf, http/json, grpc)
  --sampler NAME           OTEL_TRACES_SAMPLER
  --sampler-arg VALUE      OTEL_TRACES_SAMPLER_ARG
  --exporter NAMES         OTEL_TRACES_EXPORTER (otlp, console, none)
  --log-level LEVEL        OTEL_LOG_LEVEL
  --                       end of options (for a COMMAND named like a subcommand)

commands:
  doctor           show the resolved configuration, the instrumentations, whether the endpoint
                   answers, and any variable that could not be used (exit 1 when something is wrong)
  bootstrap-path   print the folder to put on PYTHONPATH to trace without this launcher (containers)

Configuration is read from the OTEL_* and AUTOTRACE_* environment variables: see docs/configuration.md.
"""

OPTIONS = {
    "--service-name": "OTEL_SERVICE_NAME",
    "--endpoint": "OTEL_EXPORTER_OTLP_ENDPOINT",
    "--protocol": "OTEL_EXPORTER_OTLP_PROTOCOL",
    "--sampler": "OTEL_TRACES_SAMPLER",
    "--sampler-arg": "OTEL_TRACES_SAMPLER_ARG",
    "--exporter": "OTEL_TRACES_EXPORTER",
    "--log-level": "OTEL_LOG_LEVEL",
}


def bootstrap_path() -> str:
    """The folder holding the bootstrap ``sitecustomize.py``.

    In a wheel it is ``autotrace/_bootstrap``; in an editable install or a source checkout, the
    repository's ``sitecustomize/`` folder it is built from.
    """
    package = os.path.dirname(os.path.realpath(__file__))
    shipped = os.path.join(package, "_bootstrap")
    if os.path.isfile(os.path.join(shipped, "sitecustomize.py")):
        return shipped
    return os.path.join(os.path.dirname(package), "sitecustomize")


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        _out(USAGE)
        return 0 if args else 2
    if args[0] == "--version":
        _out(f"autotrace {__version__}\n")
        return 0
    commands: dict[str, Callable[[list[str]], int]] = {
        "doctor": _doctor,
        "bootstrap-path": _print_bootstrap_path,
    }
    if args[0] in commands:
        return commands[args[0]](args[1:])
    return _launch(args)


def _print_bootstrap_path(args: list[str]) -> int:
    _out(f"{bootstrap_path()}\n")
    return 0


def _out(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _fail(message: str, code: int) -> int:
    sys.stderr.write(f"autotrace: {message}\n")
    return code


def parse_launch_args(args: list[str]) -> tuple[dict[str, str], list[str]]:
    """Split leading options (turned into environment variables) from the command."""
    env: dict[str, str] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            return env, args[i + 1 :]
        name, eq, value = arg.partition("=")
        if name not in OPTIONS:
            if arg.startswith("-"):
                raise ValueError(f"unknown option {arg!r} (see autotrace --help)")
            return env, args[i:]
        if not eq:
            if i + 1 >= len(args):
                raise ValueError(f"option {name} needs a value")
            i += 1
            value = args[i]
        env[OPTIONS[name]] = value
        i += 1
    return env, []


def launch_environment(base: dict[str, str], options: dict[str, str]) -> dict[str, str]:
    """The environment for the command: the options, and the bootstrap folder first on PYTHONPATH."""
    env = dict(base)
    env.update(options)
    folder = bootstrap_path()
    kept = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != folder]
    env["PYTHONPATH"] = os.pathsep.join([folder, *kept])
    return env


def _launch(args: list[str]) -> int:
    try:
        options, command = parse_launch_args(args)
    except ValueError as exc:
        return _fail(str(exc), 2)
    if not command:
        return _fail("no command given (see autotrace --help)", 2)
    env = launch_environment(dict(os.environ), options)
    program = _resolve(command[0], env.get("PATH"))
    if program is None:
        return _fail(f"command not found: {command[0]}", 127)
    _exec(program, command, env)


def _resolve(name: str, path: str | None) -> str | None:
    if os.sep in name or (os.altsep and os.altsep in name):
        return name if os.path.exists(name) else None
    for folder in (path if path is not None else os.defpath).split(os.pathsep):
        candidate = os.path.join(folder or os.curdir, name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def _exec(program: str, command: list[str], env: dict[str, str]) -> NoReturn:
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(program, command, env)
    except PermissionError:
        sys.exit(_fail(f"permission denied: {command[0]}", 126))
    except OSError as exc:
        sys.exit(_fail(f"cannot run {command[0]}: {exc.strerror or exc}", 126))


def _doctor(args: list[str]) -> int:
    from autotrace import doctor

    unknown = [a for a in args if a != "--no-network"]
    if unknown:
        return _fail(f"doctor: unknown argument {unknown[0]!r}", 2)
    return doctor.run(network="--no-network" not in args, out=sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
