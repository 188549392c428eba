"""Import hooks, patching and the guarded install machinery, on real modules written to a temp dir."""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from autotrace import _errors, _hooks, _instruments, _patch


@pytest.fixture
def modules(tmp_path: Path) -> Iterator[Path]:
    """A folder on sys.path for throwaway modules; removes them from sys.modules afterwards."""
    sys.path.insert(0, str(tmp_path))
    before = set(sys.modules)
    yield tmp_path
    sys.path.remove(str(tmp_path))
    for name in set(sys.modules) - before:
        del sys.modules[name]
    _hooks.clear()
    importlib.invalidate_caches()


def write(folder: Path, name: str, source: str) -> None:
    path = folder.joinpath(*name.split(".")).with_suffix(".py")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))
    importlib.invalidate_caches()


def test_hook_runs_after_the_module_code(modules: Path) -> None:
    write(modules, "lib_a", "VALUE = 41\n")
    seen: list[int] = []
    _hooks.when_imported("lib_a", lambda m: seen.append(m.VALUE))
    assert seen == []
    import lib_a  # type: ignore[import-not-found]

    assert seen == [41]
    assert lib_a.__loader__.__class__.__name__ != "_Loader"  # the module sees its real loader
    importlib.reload(lib_a)
    assert seen == [41]  # once only


def test_hook_for_already_imported_module_runs_at_once(modules: Path) -> None:
    write(modules, "lib_b", "X = 1\n")
    import lib_b  # type: ignore[import-not-found]  # noqa: F401

    seen: list[str] = []
    _hooks.when_imported("lib_b", lambda m: seen.append(m.__name__))
    assert seen == ["lib_b"]


def test_submodule_and_from_import(modules: Path) -> None:
    write(modules, "pkg_c.__init__", "")
    write(modules, "pkg_c.sub", "def f():\n    return 'real'\n")
    seen: list[str] = []
    _hooks.when_imported("pkg_c.sub", lambda m: seen.append(m.f()))
    from pkg_c.sub import f  # type: ignore[import-not-found]

    assert f() == "real"
    assert seen == ["real"]


def test_failing_hook_does_not_break_the_import(modules: Path) -> None:
    write(modules, "lib_d", "OK = True\n")

    def bad(_: ModuleType) -> None:
        raise RuntimeError("hook bug")

    _errors.set_strict(False)
    try:
        _hooks.when_imported("lib_d", bad)
        import lib_d  # type: ignore[import-not-found]
    finally:
        _errors.set_strict(True)
    assert lib_d.OK is True
    assert _errors.error_counts().get("import hook for lib_d", 0) >= 1


def test_import_error_of_the_module_itself_is_unchanged(modules: Path) -> None:
    write(modules, "lib_e", "raise ImportError('the module is broken')\n")
    _hooks.when_imported("lib_e", lambda m: None)
    with pytest.raises(ImportError, match="the module is broken"):
        import lib_e  # type: ignore[import-not-found]  # noqa: F401
    assert "lib_e" in _hooks.pending()  # the hook waits for a later, successful import


class Target:
    def method(self, x: int) -> int:
        return x * 2

    @classmethod
    def build(cls) -> str:
        return cls.__name__

    @staticmethod
    def helper() -> str:
        return "h"


class Child(Target):
    pass


def doubling(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    return ("wrapped", wrapped(*args, **kwargs))


def test_wrap_once_and_restore_exactly() -> None:
    originals = dict(Target.__dict__)
    assert _patch.wrap("t1", Target, "method", doubling)
    assert not _patch.wrap("t1", Target, "method", doubling)  # idempotent
    assert _patch.wrap("t1", Target, "build", doubling)
    assert _patch.wrap("t1", Target, "helper", doubling)
    assert Target().method(2) == ("wrapped", 4)
    assert Target.build() == ("wrapped", "Target")
    assert Target.helper() == ("wrapped", "h")
    assert Target.method.__name__ == "method"
    assert _patch.unwrap_all("t1") == 3
    assert dict(Target.__dict__) == originals
    assert Target().method(2) == 4


def test_wrap_inherited_method_then_restore_deletes_it() -> None:
    assert "method" not in Child.__dict__
    _patch.wrap("t2", Child, "method", doubling)
    assert Child().method(1) == ("wrapped", 2)
    assert Target().method(1) == 2
    _patch.unwrap_all("t2")
    assert "method" not in Child.__dict__


def test_two_owners_stack_and_unwrap_separately() -> None:
    _patch.wrap("a", Target, "method", doubling)
    _patch.wrap("b", Target, "method", doubling)
    assert Target().method(1) == ("wrapped", ("wrapped", 2))
    _patch.unwrap_all("b")
    assert Target().method(1) == ("wrapped", 2)
    _patch.unwrap_all("a")
    assert Target().method(1) == 2


@pytest.mark.parametrize(
    ("requires", "ok"),
    [
        (None, True),
        ("pytest >= 1.0", True),
        ("pytest >= 999", False),
        ("pytest >= 1, < 2", False),
        ("pytest < 999", True),
        ("no-such-distribution-xyz >= 1", False),
        ("pytest ~~ 1", False),
    ],
)
def test_requirements_from_metadata(requires: str | None, ok: bool) -> None:
    assert _instruments.check_requirement(requires)[0] is ok


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("3.1", (3, 1)), ("2.0.0rc1", (2,)), ("1.26.18", (1, 26, 18)), ("3.10.0", (3, 10)), ("7", (7,))],
)
def test_parse_version(text: str, parsed: tuple[int, ...]) -> None:
    assert _instruments.parse_version(text) == parsed


INSTRUMENTATION = """
TARGET = "{target}"
REQUIRES = {requires!r}
installed = []

def install(tracing, config):
    if {fail}:
        raise RuntimeError("install bug")
    import {target} as lib
    lib.PATCHED = True
    installed.append(tracing)

def uninstall():
    import {target} as lib
    lib.PATCHED = False
"""


def arm(folder: Path, name: str, target: str, requires: str | None = None, fail: bool = False) -> Any:
    write(folder, f"fakeinst.{name}", INSTRUMENTATION.format(target=target, requires=requires, fail=fail))
    write(folder, "fakeinst.__init__", "")
    ready: list[Any] = []

    def when_ready(callback: Any) -> None:
        ready.append(callback)
        callback("TRACING")

    _instruments.arm({name: target}, frozenset(), when_ready, None, package="fakeinst")
    return ready


def test_install_on_import_whatever_the_order(modules: Path) -> None:
    write(modules, "libx", "PATCHED = False\n")
    arm(modules, "libx_inst", "libx")
    assert _instruments.status()["libx_inst"].state == _instruments.WAITING
    import libx  # type: ignore[import-not-found]

    assert libx.PATCHED is True
    assert _instruments.status()["libx_inst"].state == _instruments.INSTALLED
    assert "libx" not in sys.modules["fakeinst"].__dict__  # the registry package imported nothing


def test_install_when_library_was_imported_first(modules: Path) -> None:
    write(modules, "liby", "PATCHED = False\n")
    import liby  # type: ignore[import-not-found]

    arm(modules, "liby_inst", "liby")
    assert liby.PATCHED is True


def test_unsupported_version_is_skipped_with_reason(modules: Path) -> None:
    write(modules, "libz", "PATCHED = False\n")
    arm(modules, "libz_inst", "libz", requires="pytest >= 999")
    import libz  # type: ignore[import-not-found]

    outcome = _instruments.status()["libz_inst"]
    assert outcome.state == _instruments.SKIPPED
    assert "not supported" in outcome.detail
    assert libz.PATCHED is False


def test_failed_install_is_undone_and_recorded(modules: Path) -> None:
    write(modules, "libw", "PATCHED = None\n")
    _errors.set_strict(False)
    try:
        arm(modules, "libw_inst", "libw", fail=True)
        import libw  # type: ignore[import-not-found]
    finally:
        _errors.set_strict(True)
    outcome = _instruments.status()["libw_inst"]
    assert outcome.state == _instruments.FAILED
    assert "install bug" in outcome.detail
    assert libw.PATCHED is False  # uninstall() ran


def test_disabled_is_never_armed(modules: Path) -> None:
    write(modules, "libv", "PATCHED = False\n")
    _instruments.arm(
        {"libv_inst": "libv"}, frozenset({"libv_inst"}), lambda cb: None, None, package="fakeinst"
    )
    import libv  # type: ignore[import-not-found]

    assert libv.PATCHED is False
    assert _instruments.status()["libv_inst"].state == _instruments.DISABLED


def test_hook_sees_the_submodule_as_an_attribute_of_its_package(modules: Path) -> None:
    (modules / "pkgattr").mkdir()
    (modules / "pkgattr" / "__init__.py").write_text("from pkgattr.sub import VALUE\n")
    (modules / "pkgattr" / "sub.py").write_text("VALUE = 42\n")
    seen = []

    def hook(_: object) -> None:
        import pkgattr.sub

        seen.append(pkgattr.sub.VALUE)

    _hooks.when_imported("pkgattr.sub", hook)
    import pkgattr  # noqa: F401

    assert seen == [42]


def test_hook_registered_while_its_module_is_being_imported_still_runs(modules: Path) -> None:
    # a.py imports b.py, whose import watches a (as an instrumentation of b installing a patch on a
    # would): a is mid-import then, so its hook runs at the next import once a is done.
    (modules / "midway_a.py").write_text("import midway_b\nVALUE = 1\n")
    (modules / "midway_b.py").write_text(
        "from autotrace import _hooks\n"
        "SEEN = []\n"
        "_hooks.when_imported('midway_a', lambda m: SEEN.append(m.VALUE))\n"
    )
    import midway_a  # noqa: F401
    import midway_b

    assert midway_b.SEEN == []
    (modules / "midway_c.py").write_text("")
    import midway_c  # noqa: F401 - the next import of anything new

    assert midway_b.SEEN == [1]
