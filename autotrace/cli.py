"""The ``autotrace`` command: run any command with tracing, ``doctor``, ``bootstrap-path``.

``autotrace [options] COMMAND [ARGS...]`` prepends only the bootstrap folder to PYTHONPATH (keeping
what was there) and replaces itself with COMMAND, so exit code, standard streams and signals are the
command's own. When another agent (or autotrace itself) already sets the command up, one warning line
says so and autotrace adds nothing: one agent per process (docs/troubleshooting.md, "Other agents").
"""

from __future__ import annotations

import os
import sys

from autotrace import _agents
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
    """The folder holding the bootstrap ``sitecustomize.py`` (see ``_agents.bootstrap_folder``)."""
    return _agents.bootstrap_folder()


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


def launch_environment(base: dict[str, str], options: dict[str, str], program: str = "") -> dict[str, str]:
    """The environment for the command: the options, and the bootstrap folder first on PYTHONPATH —
    unless the command is another agent's launcher, or runs under one (see ``already_tracing``)."""
    env = dict(base)
    env.update(options)
    folder = bootstrap_path()
    kept = _agents.without_ours(env.get("PYTHONPATH", ""), folder)
    if _hands_over(program, kept):
        # Our shim would only add a second layer (ddtrace's shim chains to ours) or a second warning.
        # A nested `autotrace` puts the folder back itself.
        if kept:
            env["PYTHONPATH"] = kept
        else:
            env.pop("PYTHONPATH", None)
    else:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (folder, kept) if p)
    return env


def _hands_over(program: str, pythonpath: str) -> bool:
    """Whether the command is set up by another launcher (or autotrace's), not by us."""
    return _agents.launcher_of(program) is not None or _agents.other_on_path(pythonpath) is not None


def already_tracing(env: dict[str, str], program: str) -> tuple[str, str] | None:
    """Who already traces a command, and how we know; None when nobody does.

    Another agent wins over autotrace: when it is there, autotrace stands down.
    """
    launcher = _agents.launcher_of(program)
    if launcher:
        return launcher, f"the command is {launcher}"
    pythonpath = env.get("PYTHONPATH", "")
    other = _agents.other_on_path(pythonpath)
    if other:
        return other, "PYTHONPATH holds its bootstrap folder"
    if _agents.ours_on_path(pythonpath, bootstrap_path()):
        return _agents.AUTOTRACE, "PYTHONPATH holds its bootstrap folder"
    return None


def _say_already_tracing(env: dict[str, str], program: str) -> None:
    """One line when the command is traced already (for `autotrace autotrace ...` the outer one says
    it, and the inner one, which finds no bootstrap folder on PYTHONPATH, is quiet)."""
    found = already_tracing(env, program)
    if found is None:
        return
    from autotrace import _log

    name, evidence = found
    _log.set_level(env.get("OTEL_LOG_LEVEL", "info"))
    if name == _agents.AUTOTRACE:
        _log.warn("autotrace is already active for this command (%s); it is not added twice", evidence)
    else:
        _log.warn("%s is already active for this command (%s); autotrace stands down", name, evidence)


def _launch(args: list[str]) -> int:
    try:
        options, command = parse_launch_args(args)
    except ValueError as exc:
        return _fail(str(exc), 2)
    if not command:
        return _fail("no command given (see autotrace --help)", 2)
    given = {**os.environ, **options}
    program = _resolve(command[0], given.get("PATH"))
    if program is None:
        return _fail(f"command not found: {command[0]}", 127)
    _say_already_tracing(given, program)
    _exec(program, command, launch_environment(dict(os.environ), options, program))


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
