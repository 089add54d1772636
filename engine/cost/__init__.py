"""Local token-cost scan of Codex and Claude Code session logs (``engine cost``).

Public API: :func:`scan_cost` returns one CodexBar-compatible cost payload (CONTRACT §3)
per requested provider (``codex``, ``claude``, ``vertexai``).  Everything environmental
(home, env, clock, zone, cache location) comes in through parameters.
"""
from __future__ import annotations

import gc
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping

from .report import build_payload, error_payload
from . import scanner
from .scanner import scan_kinds, sweep_in_background

if TYPE_CHECKING:
    from typing import Any

__all__ = ["scan_cost", "SUPPORTED", "window"]

SUPPORTED = ("codex", "claude", "vertexai")
CACHE_SUBDIR = "cost-usage"


def window(days: int, now: datetime, tz: tzinfo) -> tuple[int, str, str]:
    """``(days clamped to 1..365, since, until)`` as local ``YYYY-MM-DD`` keys; ``until`` = today."""
    days = max(1, min(365, int(days)))
    today = now.astimezone(tz).date()
    return days, (today - timedelta(days=days - 1)).isoformat(), today.isoformat()


def scan_cost(providers: list[str], *, days: int, home: Path, env: Mapping[str, str], now: datetime,
              tz: tzinfo, cache_dir: Path | None, refresh: bool = False,
              progress: Callable[[int, int], None] | None = None) -> list[dict[str, Any]]:
    """One CodexBar-compatible cost payload (CONTRACT §3) per provider in `providers` (codex|claude|vertexai).

    ``progress(done_bytes, total_bytes)`` is called while log files are parsed (one sequence
    for all kinds of log together: they are parsed by one process pool).  ``cache_dir`` holds the incremental scan cache (``None`` = no
    cache); ``refresh`` ignores and rewrites it.  A provider whose scan fails gets a payload with
    ``error`` instead of data.
    """
    # The scan allocates some hundred thousand lists, dicts and strings and creates no reference
    # cycles: the cyclic collector would only walk them again and again (~5 % of a scan).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _scan_cost(providers, days=days, home=home, env=env, now=now, tz=tz, cache_dir=cache_dir,
                          refresh=refresh, progress=progress)
    finally:
        if gc_was_enabled:
            gc.enable()


def _scan_cost(providers: list[str], *, days: int, home: Path, env: Mapping[str, str], now: datetime,
               tz: tzinfo, cache_dir: Path | None, refresh: bool,
               progress: Callable[[int, int], None] | None) -> list[dict[str, Any]]:
    days, since, until = window(days, now, tz)
    scan_since = (datetime.fromisoformat(since) - timedelta(days=1)).date().isoformat()
    scan_until = (datetime.fromisoformat(until) + timedelta(days=1)).date().isoformat()
    cdir = cache_dir / CACHE_SUBDIR if cache_dir is not None else None
    kinds: list[str] = []
    for provider in providers:
        kind = "codex" if provider == "codex" else "claude"
        if provider in SUPPORTED and kind not in kinds:
            kinds.append(kind)
    # all kinds in one go: one process pool parses the Codex and Claude logs together
    ledgers = scan_kinds(kinds, home=home, env=env, tz=tz, scan_since=scan_since, scan_until=scan_until,
                         cache_dir=cdir, refresh=refresh, progress=progress) if kinds else {}
    swept = sweep_in_background(ledgers.values())
    if scanner.graveyard is not None:
        # the process ends right after: the deletion may be cut short (a later save deletes the rest)
        scanner.graveyard.append(ledgers)
        return _payloads(providers, ledgers, since=since, until=until, days=days, now=now)
    try:
        return _payloads(providers, ledgers, since=since, until=until, days=days, now=now)
    finally:
        swept()


def _payloads(providers: list[str], ledgers: Mapping[str, Any], *, since: str, until: str, days: int,
              now: datetime) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for provider in providers:
        if provider not in SUPPORTED:
            out.append(error_payload(provider, now, f"Cost summary is not supported for {provider}.", code=3))
            continue
        led = ledgers["codex" if provider == "codex" else "claude"]
        try:
            if isinstance(led, Exception):
                raise led
            out.append(build_payload(provider, led.totals(), since=since, until=until, today=until, days=days,
                                     now=now, skipped_lines=led.skipped_lines()))
        except Exception as exc:  # noqa: BLE001 - one provider's failure must not sink the others
            out.append(error_payload(provider, now, f"{type(exc).__name__}: {exc}"))
    return out
