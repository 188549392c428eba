"""autotrace bootstrap: on PYTHONPATH (put there by `autotrace`, or by hand: `autotrace bootstrap-path`).

Starts tracing, never raises, then runs the next `sitecustomize` on sys.path, so the user's own still runs.
"""

import os as _os
import sys as _sys

try:
    from autotrace import bootstrap as _bootstrap
except ImportError as _exc:  # autotrace is not installed for this interpreter
    _sys.stderr.write(f"autotrace: not active in {_sys.executable} ({_exc})\n")
else:
    _bootstrap.run()


def _chain():
    here = _os.path.dirname(_os.path.abspath(__file__))
    entries = [p for p in _sys.path if _os.path.abspath(p or ".") == here]
    after = _sys.path[_sys.path.index(entries[0]) + 1 :] if entries else _sys.path
    import importlib.machinery
    import importlib.util

    spec = importlib.machinery.PathFinder.find_spec(
        "sitecustomize", [p for p in after if _os.path.abspath(p or ".") != here]
    )
    if spec is not None and spec.loader is not None:
        module = importlib.util.module_from_spec(spec)
        _sys.modules["sitecustomize"] = module  # `import sitecustomize` now means the user's
        spec.loader.exec_module(module)


_chain()
