"""Patches for one instrumentation, applied now or when a module is imported, undone together.

Light on purpose (only our hook and patch modules): instrumentations that run at start-up use it.
"""

from __future__ import annotations

from autotrace import _hooks, _patch

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType
    from typing import Any, Callable


class Installer:
    """Patches for one instrumentation, applied now or when a module is imported, undone together."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.active = False

    def start(self) -> None:
        self.active = True

    def when_imported(self, module: str, patch: Callable[[ModuleType], None]) -> None:
        def hook(loaded: ModuleType) -> None:
            if self.active:
                patch(loaded)

        _hooks.when_imported(module, hook)

    def wrap(self, target: Any, name: str, wrapper: Callable[..., Any]) -> None:
        _patch.wrap(self.owner, target, name, wrapper)

    def stop(self) -> None:
        self.active = False
        _patch.unwrap_all(self.owner)
