"""Byte-level JSONL reading shared by the Claude and Codex parsers.

Files are handed to the parsers as *blocks* of complete lines, so a parser can run
``find``/``re.search`` for its markers over a whole block (C speed) instead of looping over
lines in Python; huge tool-output lines are never copied line by line nor JSON-parsed.

Two ways to get the bytes, same blocks either way:

* **mapped** (POSIX, files of at least ``MMAP_MIN_BYTES`` left to read that have not been
  written for ``MMAP_MIN_AGE`` seconds): the whole file is one block of an ``mmap``; the
  marker searches read the page cache directly instead of a copy of it.  (A file truncated
  *while* mapped would raise SIGBUS on access; logs that were written recently -- the only
  ones an agent may still be writing -- are therefore read, not mapped.)
* **read**: what is left of the file in one read when it is at most ``WHOLE_READ`` bytes, else
  chunks of up to ``READ_BUF`` bytes (at most ``CHUNK``) into one reused buffer: a fresh
  multi-megabyte ``bytes`` costs a page fault per 4 KiB (~1 ms per megabyte here), paid again
  by every new process.  Lines longer than the caller's limit
  that span chunk boundaries are reported once through ``on_long`` with their first
  ``max_line`` bytes.
"""
from __future__ import annotations

import mmap
import os
import re
import time
from datetime import date, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Callable, Union

import msgspec

from ._hash import blake2b

if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any, ClassVar, Literal

    #: a usage row as the parsers make it: a plain list of mixed types (layouts in claude.py, codex.py)
    Row = list[Any]

CHUNK = 8 << 20          # the most a read buffer may hold
WHOLE_READ = 512 << 10   # remainders up to this size are read in one go
READ_BUF = 1 << 20       # the reused read buffer for larger ones (more when a line limit needs it)
SIG_EDGE = 1024
SIG_SAMPLES = 16
SIG_SAMPLE = 128
MMAP_MIN_BYTES = 256 << 10   # smaller remainders are cheaper to read than to map
MMAP_MIN_AGE = 30.0          # seconds since the last write before a file may be mapped
_CAN_MMAP = os.name == "posix"  # (on Windows a mapping would block the agent from truncating its log)

_buf: bytearray | None = None


def _buffer(size: int) -> bytearray:
    """The process's reusable read buffer, grown to ``size`` bytes when needed.

    Reusing one buffer avoids faulting in fresh pages for every chunk read (a measurable
    cost on a VM); forked pool workers each end up with their own copy.
    """
    global _buf
    if _buf is None or len(_buf) < size:
        _buf = bytearray(size)
    return _buf


Buffer = Union[bytes, bytearray, mmap.mmap]


def read_blocks(path: str, offset: int, max_line: int,
                on_block: Callable[[Buffer, int, int], None],
                on_long: Callable[[bytes], None] | None = None) -> tuple[int, bytes | None, str | None]:
    """Feed ``on_block(buf, start, end)`` with ``buf[start:end]`` = complete lines (each ending
    in ``\\n``).  ``buf`` (a reused ``bytearray`` or an ``mmap``) is only valid during the
    call: callers must copy (slice) what they keep.  A block may hold lines longer than
    ``max_line``; callers skip those they do not want.

    Returns ``(end_offset, tail, sig)``: the file offset just past the last complete line,
    the unterminated bytes after it (``None`` if the file ends with a newline, ``b""`` if the
    unterminated tail is longer than ``max_line``: it is reported through ``on_long`` and left
    unconsumed), and the :func:`file_signature` of the bytes before ``end_offset`` when it
    came for free (no tail, and the file was mapped or read whole from offset 0), else ``None``.
    """
    with open(path, "rb", buffering=0) as f:
        try:
            st = os.fstat(f.fileno())
            size = st.st_size
        except OSError:
            size = CHUNK
        else:
            if (_CAN_MMAP and size - offset >= MMAP_MIN_BYTES
                    and time.time() - st.st_mtime >= MMAP_MIN_AGE):
                mm = mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ)
                try:
                    return _one_block(mm, offset, size, offset, max_line, on_block, on_long, True)
                finally:
                    mm.close()
            if size - offset <= min(CHUNK, WHOLE_READ):
                # small enough to take in one read (a fresh buffer: no zero-filling, no copy)
                if offset:
                    f.seek(offset)
                data = f.read()
                return _one_block(data, 0, len(data), offset, max_line, on_block, on_long, offset == 0)
        # room for the whole remainder (plus growth while reading) when it is small; always
        # more than one over-long line so a full buffer always holds a newline or a long line
        cap = min(CHUNK, max(min(size - offset + (64 << 10), READ_BUF), 2 * max_line + (64 << 10)))
        buf = _buffer(cap)
        cap = len(buf)
        mv = memoryview(buf)
        if offset:
            f.seek(offset)
        pos = offset            # file offset of buf[0]
        base = 0                # buf[base:fill] = bytes not yet handed out
        fill = 0
        skipping = False        # inside an over-long line whose prefix was already reported
        long_start = 0          # file offset where that over-long line starts
        whole = offset == 0     # buf[0:fill] is still the file from offset 0
        readinto = f.readinto
        find = buf.find
        try:
            while True:
                if fill == cap:
                    # full: move the unconsumed bytes (< max_line of them) to the front
                    rest = fill - base
                    if rest:
                        buf[0:rest] = mv[base:fill]
                    pos += base
                    base, fill = 0, rest
                    whole = False
                n = readinto(mv[fill:])
                if not n:
                    break
                old = fill
                fill += n
                if skipping:
                    nl = find(b"\n", old, fill)
                    if nl < 0:
                        base = fill
                        continue
                    base = nl + 1
                    skipping = False
                    old = base
                last_nl = buf.rfind(b"\n", old, fill)
                if last_nl >= 0:
                    end = last_nl + 1
                    if end > base:
                        on_block(buf, base, end)
                    base = end
                if fill - base > max_line:
                    if on_long is not None:
                        on_long(bytes(mv[base:base + max_line]))
                    long_start = pos + base
                    base = fill
                    skipping = True
        finally:
            mv.release()
    if skipping:
        # unterminated over-long line at EOF: leave it unconsumed so it is re-read whole
        return long_start, b"", None
    end = pos + base
    if fill > base:
        return end, bytes(buf[base:fill]), None
    return end, None, (buffer_signature(memoryview(buf)[:fill], end) if whole else None)


def _one_block(buf: Buffer, start: int, stop: int, pos: int, max_line: int,
               on_block: Callable[[Buffer, int, int], None],
               on_long: Callable[[bytes], None] | None, whole: bool) -> tuple[int, bytes | None, str | None]:
    """:func:`read_blocks` for bytes already at hand: ``buf[start:stop]`` = the file from offset
    ``pos`` to its end, handed out as one block; ``whole``: ``buf`` starts at file offset 0."""
    last = buf.rfind(b"\n", start, stop)
    end = last + 1 if last >= 0 else start
    if end > start:
        on_block(buf, start, end)
    file_end = pos + (end - start)
    if stop - end > max_line:
        if on_long is not None:
            on_long(bytes(buf[end:end + max_line]))
        return file_end, b"", None
    if stop > end:
        return file_end, bytes(buf[end:stop]), None
    return file_end, None, (buffer_signature(buf, file_end) if whole else None)


def _sig_windows(offset: int) -> list[tuple[int, int]]:
    if offset <= 2 * SIG_EDGE + SIG_SAMPLES * SIG_SAMPLE:
        return [(0, offset)]
    step = (offset - 2 * SIG_EDGE) // (SIG_SAMPLES + 1)
    return ([(0, SIG_EDGE)] + [(SIG_EDGE + i * step, SIG_SAMPLE) for i in range(1, SIG_SAMPLES + 1)]
            + [(offset - SIG_EDGE, SIG_EDGE)])


def _sig_digest(offset: int, parts: Sequence[bytes | bytearray | memoryview]) -> str:
    return blake2b(offset.to_bytes(8, "little") + b"".join(parts), digest_size=8).hexdigest()


def file_signature(path: str, offset: int) -> str:
    """Hash of the bytes before ``offset``: the first and last ``SIG_EDGE`` bytes plus
    ``SIG_SAMPLES`` evenly spaced ``SIG_SAMPLE``-byte windows (the whole prefix when small).

    Stored with a cached offset so an append (same prefix) is told apart from a rewrite
    without re-reading the file.
    """
    with open(path, "rb") as f:
        parts = []
        for at, n in _sig_windows(offset):
            f.seek(at)
            parts.append(f.read(n))
    return _sig_digest(offset, parts)


def buffer_signature(data: memoryview | mmap.mmap | bytes | bytearray, offset: int) -> str:
    """:func:`file_signature` of bytes already in memory (``data`` = the file from offset 0)."""
    return _sig_digest(offset, [data[at:at + n] for at, n in _sig_windows(offset)])


#: what decoding a line can raise: msgspec's errors, and UnicodeDecodeError for a string that is
#: not valid UTF-8 (msgspec raises that one as it is)
DECODE_ERRORS = (msgspec.DecodeError, UnicodeDecodeError)


def valid_utf8(raw: bytes | bytearray) -> bool:
    """Whether ``raw`` is valid UTF-8 (callers test ``raw.isascii()`` first, the common case).

    The typed decoders do not check the UTF-8 of the text they skip; a line that is not valid
    JSON -- invalid UTF-8 included -- must be skipped whichever decoder reads it.
    """
    try:
        raw.decode()
    except UnicodeDecodeError:
        return False
    return True


def key_hash(key: str) -> int:
    """Stable signed 64-bit hash of a dedup key (persisted in the cache)."""
    return int.from_bytes(blake2b(key.encode(), digest_size=8).digest(), "little", signed=True)


def as_int(value: object) -> int:
    """Token counts: ints and floats only (never bools or strings), negatives clamp to 0."""
    if type(value) is int:
        return value if value > 0 else 0
    if type(value) is float and value == value and value not in (float("inf"), float("-inf")):
        return int(value) if value > 0 else 0
    return 0


ZULU_REST = re.compile(r":[0-5][0-9]:[0-5][0-9](?:[.,][0-9]+)?[Zz]")


class DayKeyer:
    """``YYYY-MM-DD`` of an ISO-8601 timestamp in the local zone ``tz``.

    Zulu timestamps (``…THH:MM:SS[.fff]Z``) are memoised per UTC hour: the hour's local day
    is computed once (when the zone's offset and local day are the same at both ends of the
    hour, else every such timestamp is parsed), so the common case costs one dict lookup and
    a format check.  Use :meth:`for_tz` to share one memo per zone within a process.
    """

    __slots__ = ("tz", "hours")
    _shared: ClassVar[dict[tzinfo, DayKeyer]] = {}

    def __init__(self, tz: tzinfo):
        self.tz = tz
        #: UTC hour ``YYYY-MM-DDTHH`` -> its local day, None if the day changes within the hour;
        #: read-only for callers, who may look an hour up first (then check the rest with
        #: ``ZULU_REST``) and call :meth:`day` when it is missing or None
        self.hours: dict[str, str | None] = {}

    @classmethod
    def for_tz(cls, tz: tzinfo) -> "DayKeyer":
        try:
            k = cls._shared.get(tz)
            if k is None:
                k = cls._shared[tz] = cls(tz)
            return k
        except TypeError:  # unhashable custom tzinfo
            return cls(tz)

    def parse(self, ts: str) -> datetime | None:
        try:
            dt = datetime.fromisoformat(ts[:-1] + "+00:00" if ts.endswith(("Z", "z")) else ts)
        except ValueError:
            return None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=self.tz)
        return dt

    def _hour(self, hour: str) -> str | None:
        try:
            first = datetime.fromisoformat(hour + ":00:00+00:00").astimezone(self.tz)
            last = datetime.fromisoformat(hour + ":59:59.999999+00:00").astimezone(self.tz)
        except (ValueError, OverflowError):
            d = None
        else:
            d = first.date().isoformat()
            if last.date().isoformat() != d or first.utcoffset() != last.utcoffset():
                d = None
        self.hours[hour] = d
        return d

    def day(self, ts: str) -> str | None:
        if len(ts) >= 20 and ts[10] == "T":
            h = ts[:13]
            d: str | Literal[0] | None = self.hours.get(h, 0)
            if d == 0:
                d = self._hour(h)
            if d is not None and ZULU_REST.fullmatch(ts, 13):
                return d
        dt = self.parse(ts)
        if dt is None:
            return None
        return dt.astimezone(self.tz).date().isoformat()


def shift_day(day: str, days: int) -> str:
    return (date.fromisoformat(day) + timedelta(days=days)).isoformat()
