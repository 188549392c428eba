"""The instrumentation registry: names only, nothing is imported here.

Each entry maps an instrumentation module, ``autotrace.instrumentation.<name>``, to the import name
whose first import installs it. The module follows the contract in docs/how-it-works.md: a docstring
that is its user doc, ``TARGET``, ``REQUIRES`` (a distribution requirement checked from package
metadata, or None for the standard library), ``install(tracing, config)`` and ``uninstall()``.
"""

from __future__ import annotations

REGISTRY: dict[str, str] = {}
