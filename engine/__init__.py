"""Declarative-spec provider engine for AI usage quotas: YAML specs run by one engine, CodexBar-compatible JSON.

Library use (what frontends embed):

    import engine
    payloads = engine.usage(["openrouter", "zai"])           # CodexBar `usage --format json` rows
    spec = engine.load_spec("openrouter")
    outcome = engine.run(spec, ctx)                           # one provider, with every attempt recorded
"""
from __future__ import annotations

from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any
from typing import Mapping as _Mapping

from .errors import FETCH_KINDS, EngineError, SpecError

if _TYPE_CHECKING:
    from .context import RunContext
    from .load import Spec, find_spec, load_spec
    from .runner import Outcome, fetch, fetch_many

# The fetch side (httpx, jinja2, asyncio) is imported on first use, so that `import engine` and the
# cost scanner (`engine cost`, `engine.local_cost`) do not pay ~0.2 s of imports they never use.
_LAZY = {"RunContext": "context", "Spec": "load", "find_spec": "load", "load_spec": "load",
         "Outcome": "runner", "fetch": "runner", "fetch_many": "runner"}


def __getattr__(name: str) -> _Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


def run(spec: Spec, ctx: RunContext, *, source: str | None = None,
        account: _Mapping[str, _Any] | None = None) -> Outcome:
    """Fetch one provider synchronously (a thin wrapper over the async `fetch`)."""
    import asyncio

    from .runner import fetch

    return asyncio.run(fetch(spec, ctx, source=source, account=account))


def usage(providers: list[str], ctx: RunContext | None = None, *, source: str | None = None) -> list[dict[str, _Any]]:
    """CodexBar-compatible payloads for `providers` (ids, CLI names or aliases), fetched concurrently."""
    import asyncio

    from .config import load_config
    from .context import RunContext
    from .load import find_spec
    from .output import payload
    from .registry import PROVIDER_IDS
    from .runner import fetch_many

    if ctx is None:
        ctx = RunContext.live()
        ctx.config = load_config(ctx.env, ctx.home, list(PROVIDER_IDS)).entries
    specs = [find_spec(p) for p in providers]
    return [payload(o) for o in asyncio.run(fetch_many(specs, ctx, source=source))]


def local_cost(providers: list[str], *, days: int = 30, ctx: RunContext | None = None, refresh: bool = False) -> list[dict[str, _Any]]:
    """CodexBar-compatible `cost` payloads (local Codex/Claude session-log scan)."""
    from .context import RunContext
    from .cost import scan_cost

    ctx = ctx or RunContext.live()
    return scan_cost(providers, days=days, home=ctx.home, env=ctx.env, now=ctx.now(), tz=ctx.tz,
                     cache_dir=ctx.cache_dir, refresh=refresh)


__all__ = [
    "EngineError",
    "FETCH_KINDS",
    "Outcome",
    "RunContext",
    "Spec",
    "SpecError",
    "local_cost",
    "fetch",
    "fetch_many",
    "find_spec",
    "load_spec",
    "run",
    "usage",
]
