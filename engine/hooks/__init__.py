"""Hook registry: the named Python escapes a spec may use where YAML cannot say it (RPC, PTY, local files).

Specs name hooks (`hook: codex_app_server`); they never import them. No hooks are registered yet.
"""
from __future__ import annotations

from typing import Any, Awaitable, Protocol

from ..errors import EngineError


class Hook(Protocol):
    """A hook gets the same RunContext as the declarative pipeline and returns a usage snapshot dict."""

    def __call__(self, *, spec: Any, strategy: Any, ctx: Any, inputs: Any) -> Awaitable[dict[str, Any]]: ...


#: name -> hook. Adding one costs a module in engine/hooks/, one line here, and a cassette.
REGISTRY: dict[str, Hook] = {}


def get_hook(name: str) -> Hook:
    try:
        return REGISTRY[name]
    except KeyError:
        raise EngineError("spec_invalid", f"unknown hook {name!r}; known hooks: {', '.join(REGISTRY) or 'none'}")
