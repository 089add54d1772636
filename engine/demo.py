"""Demo: every landed provider rendered from its bundled cassettes, as a table (no network, no real home)."""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, TextIO

from .cassette import load_cassette, replay_context
from .load import FIXTURES_DIR, all_specs
from .output import dumps, payload
from .runner import fetch


def demo_cassette(provider: str) -> Path | None:
    """The provider's showcase cassette: `normal.yaml`, else the first success case by name."""
    folder = FIXTURES_DIR / provider
    normal = folder / "normal.yaml"
    if normal.exists():
        return normal
    for path in sorted(folder.glob("*.yaml")):
        if "error" not in (load_cassette(path).get("expect") or {}):
            return path
    return None


def _window_text(window: dict[str, Any] | None, label: str) -> str:
    if not window:
        return "-"
    left = max(0.0, min(100.0, 100 - window["usedPercent"]))
    return f"{label}: {left:.0f}% left"


def run_demo(*, json_mode: bool, pretty: bool, out: TextIO, err: TextIO) -> int:
    rows: list[tuple[Any, Any]] = []
    for spec in all_specs():
        path = demo_cassette(spec.id)
        if path is None:
            continue
        cassette = load_cassette(path)
        with replay_context(cassette) as (ctx, _):
            outcome = asyncio.run(fetch(spec, ctx, source=cassette.get("source")))
        rows.append((spec, outcome))
    if json_mode:
        print(dumps([payload(o) for _, o in rows], pretty=pretty), file=out)
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="engine demo: every provider replayed from fixtures/<id>/normal.yaml (no network)")
    for column in ("Provider", "Source", "Primary", "Secondary", "Tertiary", "Plan / detail"):
        table.add_column(column)
    for spec, o in rows:
        labels = spec.data.get("labels", {})
        if o.error:
            table.add_row(spec.name, o.mode, f"error: {o.error.kind}", "", "", o.error.message[:60])
            continue
        u = o.usage or {}
        detail = u.get("loginMethod") or (u.get("primary") or {}).get("resetDescription") or ""
        table.add_row(spec.name, o.source or "", _window_text(u.get("primary"), labels.get("primary", "Session")),
                      _window_text(u.get("secondary"), labels.get("secondary", "Weekly")),
                      _window_text(u.get("tertiary"), labels.get("tertiary", "Tertiary")), detail)
    Console(file=out, width=150).print(table)
    print("Next: `engine usage` fetches the providers enabled in your CodexBar config "
          "(`engine list` shows which inputs are set here).", file=out)
    return 0
