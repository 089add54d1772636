"""The facts of the machine a live run starts from: environment, home folder, clock, local time zone.

Kept apart from `context.py` (which also builds HTTP transports) so that the cost scanner's CLI path
reads them without importing httpx, jinja2 or asyncio. Together with `context.py` and `cli.py` this is
the only code that reads the real process environment, home folder or clock.
"""
from __future__ import annotations

import os
from datetime import datetime, timezone, tzinfo
from pathlib import Path
from typing import Mapping


def environment() -> dict[str, str]:
    return dict(os.environ)


def home() -> Path:
    return Path.home()


def now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def local_tz(env: Mapping[str, str]) -> tzinfo:
    """`TZ` when it names a known zone, else the system's local zone."""
    name = env.get("TZ", "").lstrip(":")
    if name in ("UTC", "Etc/UTC"):
        return timezone.utc  # (no zoneinfo import, no tz database read)
    if name:
        try:
            from zoneinfo import ZoneInfo

            return ZoneInfo(name)
        except Exception:  # unknown zone names fall back to the system's
            pass
    local = datetime.now().astimezone().tzinfo
    return local or timezone.utc


def user_cache_dir(env: Mapping[str, str]) -> Path:
    """`$XDG_CACHE_HOME/engine`, else `~/.cache/engine`."""
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "engine"


def engine_cache_dir(env: Mapping[str, str]) -> Path | None:
    """The engine's own cache: `ENGINE_CACHE_DIR` (`off` disables it), else :func:`user_cache_dir`."""
    explicit = env.get("ENGINE_CACHE_DIR")
    if explicit:
        return Path(explicit) if explicit != "off" else None
    return user_cache_dir(env)
