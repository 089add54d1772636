"""Byte-level JSONL reading shared by the Claude and Codex parsers.

Files are read in large chunks and handed to the parsers as *blocks* of complete lines, so
a parser can run ``bytes.find`` for its marker over a whole block (C speed) instead of
looping over lines in Python; huge tool-output lines are never copied line by line nor
JSON-parsed.  Lines longer than the caller's limit that span chunk boundaries are reported
once through ``on_long`` with their first ``max_line`` bytes.
"""
from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, tzinfo
from typing import Callable

CHUNK = 1 << 20
SIG_EDGE = 8192
SIG_SAMPLES = 32
SIG_SAMPLE = 256


def read_blocks(path: str, offset: int, max_line: int,
                on_block: Callable[[bytes, int], None],
                on_long: Callable[[bytes], None] | None = None) -> tuple[int, bytes | None]:
    """Feed ``on_block(buf, end)`` with ``buf[:end]`` = complete lines (each ending in ``\\n``).

    Returns ``(end_offset, tail)``: the file offset just past the last complete line, and the
    unterminated bytes after it (``None`` if the file ends with a newline, ``b""`` if the
    unterminated tail is longer than ``max_line``).
    """
    pos = offset            # file offset of the start of `pending`
    pending = b""
    skipping = False        # inside an over-long line whose prefix was already reported
    long_start = 0          # file offset where that over-long line starts
    with open(path, "rb") as f:
        if offset:
            f.seek(offset)
        while True:
            data = f.read(CHUNK)
            if not data:
                break
            if skipping:
                nl = data.find(b"\n")
                if nl < 0:
                    pos += len(data)
                    continue
                pos += nl + 1
                data = data[nl + 1:]
                skipping = False
                if not data:
                    continue
            buf = pending + data if pending else data
            last_nl = buf.rfind(b"\n")
            if last_nl < 0:
                if len(buf) > max_line:
                    if on_long is not None:
                        on_long(buf[:max_line])
                    long_start = pos
                    pos += len(buf)
                    pending = b""
                    skipping = True
                else:
                    pending = buf
                continue
            end = last_nl + 1
            on_block(buf, end)
            pos += end
            pending = buf[end:]
            if len(pending) > max_line:
                if on_long is not None:
                    on_long(pending[:max_line])
                long_start = pos
                pos += len(pending)
                pending = b""
                skipping = True
    if skipping:
        # unterminated over-long line at EOF: leave it unconsumed so it is re-read whole
        return long_start, b""
    return pos, (pending if pending else None)


def file_signature(path: str, offset: int) -> str:
    """Hash of the bytes before ``offset``: the first and last ``SIG_EDGE`` bytes plus
    ``SIG_SAMPLES`` evenly spaced ``SIG_SAMPLE``-byte windows (the whole prefix when small).

    Stored with a cached offset so an append (same prefix) is told apart from a rewrite
    without re-reading the file.
    """
    h = hashlib.blake2b(digest_size=8)
    h.update(offset.to_bytes(8, "little"))
    with open(path, "rb") as f:
        if offset <= 2 * SIG_EDGE + SIG_SAMPLES * SIG_SAMPLE:
            h.update(f.read(offset))
        else:
            h.update(f.read(SIG_EDGE))
            step = (offset - 2 * SIG_EDGE) // (SIG_SAMPLES + 1)
            for i in range(1, SIG_SAMPLES + 1):
                f.seek(SIG_EDGE + i * step)
                h.update(f.read(SIG_SAMPLE))
            f.seek(offset - SIG_EDGE)
            h.update(f.read(SIG_EDGE))
    return h.hexdigest()


def key_hash(key: str) -> int:
    """Stable signed 64-bit hash of a dedup key (persisted in the cache)."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little", signed=True)


def as_int(value: object) -> int:
    """Token counts: ints and floats only (never bools or strings), negatives clamp to 0."""
    if type(value) is int:
        return value if value > 0 else 0
    if type(value) is float and value == value and value not in (float("inf"), float("-inf")):
        return int(value) if value > 0 else 0
    return 0


class DayKeyer:
    """``YYYY-MM-DD`` of an ISO-8601 timestamp in the local zone ``tz``.

    Zulu timestamps are memoised per minute (every zone offset is a whole number of
    minutes), so the common case costs one dict lookup.
    """

    __slots__ = ("tz", "_memo")

    def __init__(self, tz: tzinfo):
        self.tz = tz
        self._memo: dict[str, str] = {}

    def parse(self, ts: str) -> datetime | None:
        try:
            dt = datetime.fromisoformat(ts[:-1] + "+00:00" if ts.endswith(("Z", "z")) else ts)
        except ValueError:
            return None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=self.tz)
        return dt

    def day(self, ts: str) -> str | None:
        if len(ts) >= 17 and ts[-1] in "Zz" and ts[10] == "T":
            k = ts[:16]
            d = self._memo.get(k)
            if d is not None:
                return d
            dt = self.parse(ts)
            if dt is None:
                return None
            d = dt.astimezone(self.tz).date().isoformat()
            self._memo[k] = d
            return d
        dt = self.parse(ts)
        if dt is None:
            return None
        return dt.astimezone(self.tz).date().isoformat()


def shift_day(day: str, days: int) -> str:
    return (datetime.strptime(day, "%Y-%m-%d") + timedelta(days=days)).strftime("%Y-%m-%d")
