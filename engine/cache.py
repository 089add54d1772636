"""The engine's on-disk cache entries: parsed data (marshal) keyed by a content hash, written atomically.

Used for validated specs (validate.py) and parsed cassettes (cassette.py); a missing, unreadable or foreign
entry reads as None and only costs the parse it would have saved.
"""
from __future__ import annotations

import hashlib
import marshal
import os
from pathlib import Path
from typing import Any


def entry_path(cache_dir: Path, kind: str, key: bytes, prefix: str = "") -> Path:
    """`<cache_dir>/<kind>/<prefix><sha256(key)[:32]>.marshal`."""
    return cache_dir / kind / f"{prefix}{hashlib.sha256(key).hexdigest()[:32]}.marshal"


def read_entry(entry: Path) -> Any:
    """The cached value, or None when there is none (or it cannot be read)."""
    try:
        return marshal.loads(entry.read_bytes())
    except (OSError, EOFError, ValueError, TypeError):
        return None


def write_entry(entry: Path, value: Any) -> None:
    """Store `value` atomically; an unwritable cache or a value marshal cannot hold (YAML dates) is skipped."""
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = entry.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(marshal.dumps(value))
        os.replace(tmp, entry)
    except (OSError, ValueError):
        pass
