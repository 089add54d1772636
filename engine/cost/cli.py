"""``engine cost``: argument wiring, output, and the progress bar (CONTRACT §3)."""
from __future__ import annotations

import argparse
import time
from contextlib import contextmanager
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Callable, Iterator, Mapping, TextIO

from . import SUPPORTED, scan_cost
from .report import DISPLAY, dumps, render_text

ALL = ("codex", "claude")          # `all`/`both`: the providers CodexBar's `cost` supports
PROGRESS_MIN_BYTES = 64 << 20      # only a cold scan of a large history shows a bar


def _days(value: str | int) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        return 30
    return max(1, min(365, n))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--provider", default="all",
                        help="codex | claude | vertexai | all (codex+claude); comma-separated list allowed")
    parser.add_argument("--days", type=_days, default=30, help="history window in days (1...365, default 30)")
    parser.add_argument("--format", choices=["text", "json"], default=None, help="output format (default text)")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--pretty", action="store_true", help="pretty JSON: 2-space indent, keys sorted")
    parser.add_argument("--refresh", action="store_true", help="ignore the scan cache and rescan every log")
    parser.add_argument("--json-only", action="store_true", help="JSON on stdout, nothing on stderr")
    parser.add_argument("--no-color", action="store_true", help="no ANSI colour in text output")


def _providers(raw: str | None) -> tuple[list[str], list[str]]:
    selected: list[str] = []
    unsupported: list[str] = []
    for part in (raw or "all").split(","):
        p = part.strip().lower()
        if not p:
            continue
        names = list(ALL) if p in ("all", "both") else [p]
        for n in names:
            target = selected if n in SUPPORTED else unsupported
            if n not in target:
                target.append(n)
    return selected, unsupported


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


@contextmanager
def _progress_bar(stderr: TextIO, enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    bar: Progress | None = None
    task = None
    last = [0.0]

    def update(done: int, total: int) -> None:
        nonlocal bar, task
        if bar is None:
            if total < PROGRESS_MIN_BYTES:
                return
            # no auto-refresh thread: the scan forks worker processes while the bar is shown
            bar = Progress(TextColumn("Scanning session logs"), BarColumn(), DownloadColumn(),
                           TimeRemainingColumn(), console=Console(file=stderr), transient=True,
                           auto_refresh=False)
            bar.start()
            task = bar.add_task("scan", total=total)
        bar.update(task, completed=done, total=total)  # type: ignore[arg-type]  # (task is set together with bar)
        now = time.monotonic()
        if now - last[0] >= 0.1 or done >= total:  # at most ten redraws a second
            last[0] = now
            bar.refresh()

    try:
        yield update
    finally:
        if bar is not None:
            bar.stop()


def run(args: argparse.Namespace, *, env: Mapping[str, str], home: Path, now: datetime, tz: tzinfo,
        cache_dir: Path | None, stdout: TextIO, stderr: TextIO) -> int:
    json_only = bool(getattr(args, "json_only", False))
    fmt = getattr(args, "format", None) or ("json" if getattr(args, "json", False) or json_only else "text")
    pretty = bool(getattr(args, "pretty", False))
    selected, unsupported = _providers(getattr(args, "provider", None))
    if unsupported and not json_only:
        names = ", ".join(sorted(DISPLAY.get(n, n) for n in unsupported))
        print(f"Skipping providers without local cost usage: {names}", file=stderr)
    if not selected:
        message = "cost is only supported for Claude and Codex."
        if fmt == "json":
            print(dumps([{"provider": "cli", "source": "cli",
                          "error": {"code": 1, "message": f"Error: {message}", "kind": "args"}}], pretty=pretty),
                  file=stdout)
        else:
            print(f"Error: {message}", file=stderr)
        return 1
    days = _days(getattr(args, "days", 30))
    show_bar = fmt == "text" and not json_only and _isatty(stderr)
    with _progress_bar(stderr, show_bar) as progress:
        payloads = scan_cost(selected, days=days, home=home, env=env, now=now, tz=tz, cache_dir=cache_dir,
                             refresh=bool(getattr(args, "refresh", False)), progress=progress)
    exit_code = 0
    for p in payloads:
        if "error" in p:
            exit_code = int(p["error"].get("code", 1)) or 1
    if fmt == "json":
        if payloads:
            print(dumps(payloads, pretty=pretty), file=stdout)
        return exit_code
    color = _isatty(stdout) and not getattr(args, "no_color", False) and env.get("TERM") != "dumb"
    sections = []
    for p in payloads:
        if "error" in p:
            if not json_only:
                print(f"Error: {p['error']['message']}", file=stderr)
            continue
        sections.append(render_text(p, color=color))
    if sections:
        print("\n\n".join(sections), file=stdout)
    return exit_code
