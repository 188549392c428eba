"""Settings for hand-added middleware: the running agent's, starting it in-process if needed."""

from __future__ import annotations

from autotrace.middleware._server import ServerSettings


def resolve() -> ServerSettings | None:
    """The agent's server settings, or None when autotrace is disabled here (the middleware then
    passes requests through untouched)."""
    from autotrace import bootstrap

    agent = bootstrap.agent()
    if agent is None:
        bootstrap.run()
        agent = bootstrap.agent()
    if agent is None:
        return None
    return ServerSettings.from_tracing(agent.tracing())
