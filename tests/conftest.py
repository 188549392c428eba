"""Test-wide settings: autotrace's internal errors are fatal here (strict guard)."""

from __future__ import annotations

import os

os.environ["AUTOTRACE_STRICT"] = "true"

from autotrace import _errors

_errors.set_strict(True)
