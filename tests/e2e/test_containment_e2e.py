"""Containment under the real CLI: a broken helper of ours costs spans, never the app's output.

The app breaks autotrace's own SQL sanitizer (never the driver), then queries sqlite3 many times,
hits a syntax error of its own and calls an HTTP server. Run plainly and under ``autotrace`` with
strict mode off, it prints the same thing and exits the same way; autotrace says so once on stderr
however many queries hit the fault, and the HTTP call still gets its span.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.conftest import AUTOTRACE, clean_env, run, traced_env, warnings_in, write_script
from tests.otlp_receiver import OTLPReceiver

CLIENT = 3

APP = """
    import json
    import sqlite3
    import sys
    import traceback
    import urllib.request

    from autotrace import sql

    def broken(*args, **kwargs):
        raise ValueError("injected into autotrace's sanitizer")

    sql.sanitize = broken  # ours, not the driver's: what a bug in autotrace would look like

    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (id INTEGER, note TEXT)")
    for i in range(5):
        conn.execute("INSERT INTO t VALUES (?, ?)", (i, f"n{i}"))
    rows = conn.execute("SELECT id, note FROM t WHERE id > 1 ORDER BY id").fetchall()
    try:
        conn.execute("SELEC 1")
    except sqlite3.OperationalError as exc:
        error = [type(exc).__name__, list(exc.args), repr(exc.__context__)]
        error.append(traceback.extract_tb(exc.__traceback__)[0].name)
    with urllib.request.urlopen(sys.argv[1] + "/echo", timeout=10) as response:
        seen = sorted(k for k in json.loads(response.read()) if k not in ("traceparent", "tracestate"))
    print(json.dumps({"rows": rows, "error": error, "status": response.status, "seen": seen}))
"""


def test_a_broken_sanitizer_changes_nothing_for_the_app(
    tmp_path: Path, echo: str, receiver: OTLPReceiver
) -> None:
    script = write_script(tmp_path, "app.py", APP)
    plain = run(["python", str(script), echo], clean_env(AUTOTRACE_STRICT="false"))
    assert plain.returncode == 0, plain.stderr
    env = traced_env(receiver, AUTOTRACE_STRICT="false", OTEL_SERVICE_NAME="containment")
    traced = run([AUTOTRACE, "python", str(script), echo], env)
    assert traced.returncode == 0, traced.stderr
    assert traced.stdout == plain.stdout
    out = json.loads(traced.stdout)
    assert out["error"] == ["OperationalError", ['near "SELEC": syntax error'], "None", "<module>"]
    # Eight queries hit the fault: one line says so.
    assert warnings_in(traced.stderr) == [
        "autotrace: WARNING: internal error in db query (the app is unaffected; further errors here are "
        'counted): ValueError("injected into autotrace\'s sanitizer")'
    ]
    (span,) = receiver.wait_for_spans(1, predicate=lambda s: s.kind == CLIENT)
    assert span.name == "GET" and span.attributes["http.response.status_code"] == 200
    assert not [s for s in receiver.spans if "db.system.name" in s.attributes]
