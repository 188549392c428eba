"""The documentation's own links resolve, and every variable the configuration reads is documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
LINK = re.compile(r"\]\(([^)#\s]+\.md)(?:#[^)]*)?\)")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_resolve(page: Path) -> None:
    missing = [t for t in LINK.findall(page.read_text()) if "://" not in t and not (page.parent / t).exists()]
    assert missing == []


def test_every_variable_read_is_in_configuration_md() -> None:
    source = (ROOT / "autotrace" / "config.py").read_text()
    read = set(re.findall(r'"((?:OTEL|AUTOTRACE)_[A-Z0-9_]+)"', source))
    documented = (ROOT / "docs" / "configuration.md").read_text()
    # A signal-specific variable is documented beside the general one as `…_TRACES_…`.
    general = {v: v.replace("_TRACES_", "_", 1) for v in read}
    missing = [
        v
        for v in read
        if v not in documented and not ("…_TRACES_" in documented and general[v] in documented)
    ]
    assert sorted(missing) == []
