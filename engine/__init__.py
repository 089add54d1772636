"""Declarative-spec provider engine for AI usage quotas: YAML specs run by one engine, CodexBar-compatible JSON.

Library use (what frontends embed):

    import engine
    payloads = engine.usage(["openrouter", "zai"])           # CodexBar `usage --format json` rows
    spec = engine.load_spec("openrouter")
    outcome = engine.run(spec, ctx)                           # one provider, with every attempt recorded
"""
from __future__ import annotations

import asyncio as _asyncio
from typing import Any as _Any
from typing import Mapping as _Mapping

from .context import RunContext
from .errors import FETCH_KINDS, EngineError, SpecError
from .load import Spec, find_spec, load_spec
from .run import Outcome, fetch, fetch_many


def run(spec: Spec, ctx: RunContext, *, source: str | None = None,
        account: _Mapping[str, _Any] | None = None) -> Outcome:
    """Fetch one provider synchronously (a thin wrapper over the async `fetch`)."""
    return _asyncio.run(fetch(spec, ctx, source=source, account=account))


def usage(providers: list[str], ctx: RunContext | None = None, *, source: str | None = None) -> list[dict[str, _Any]]:
    """CodexBar-compatible payloads for `providers` (ids, CLI names or aliases), fetched concurrently."""
    from .config import load_config
    from .output import payload
    from .registry import PROVIDER_IDS

    if ctx is None:
        ctx = RunContext.live()
        ctx.config = load_config(ctx.env, ctx.home, list(PROVIDER_IDS)).entries
    specs = [find_spec(p) for p in providers]
    return [payload(o) for o in _asyncio.run(fetch_many(specs, ctx, source=source))]


def local_cost(providers: list[str], *, days: int = 30, ctx: RunContext | None = None, refresh: bool = False) -> list[dict[str, _Any]]:
    """CodexBar-compatible `cost` payloads (local Codex/Claude session-log scan)."""
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
