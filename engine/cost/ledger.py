"""The incremental per-file ledger behind a cost scan, and its on-disk cache.

Each scanned file contributes ``agg`` -- sums per ``"day|model|vertex"`` of all its rows
(after the in-file dedup) -- plus the 64-bit hashes of its dedup keys.  A key present in
more than one file is a *dup*; its surplus copies are subtracted from the total:

* Claude: the copy with the most output tokens (the final streamed chunk) wins, then a
  non-sidechain row, then a path without ``/subagents/``, then the smallest path;
* Codex: rows are identical by construction (the key holds the values); one copy counts.

Only changed files are re-parsed, so a rescan costs ``O(changed bytes + changed keys)``
plus a little fixed bookkeeping: only the shards of changed files are read and rewritten,
the totals are re-summed only for the ``day|model|vertex`` keys a change touched (in the
same order as a full pass, so bit-identical), and the stored key hashes are searched (a byte
map, then ``rfind``) and updated in place (a changed file's stored hashes are dropped, its
new ones added) instead of being loaded into a dict.

Cache files in ``cache_dir``, each named with the generation ``<g>`` (16 hex digits) of the
save that wrote it; a save writes only the changed parts, as new files, never over old ones::

    cost-<kind>-index-<g>.json        files' stat (their order is the file order), the total, the
                                      per-key sums before dups/rounding, skipped lines, and the
                                      generation of every other part: all a scan with nothing
                                      changed reads
    cost-<kind>-files-<nn>-<g>.json   files' offset/signature/parser state/agg, 4 shards by path
    cost-<kind>-dups-<g>.json         keys held by more than one file
    cost-<kind>-keys-<g>.bin          a byte map of all key hashes, then every file's key hashes in
                                      file order (read only when something changed)
    cost-claude-rows-<nn>-<g>.json    Claude rows, 32 shards by path (read for changed files only)

The index is written last; the newest index that decodes is the cache, and the parts it names
are then removed from view only by a later save, which deletes the files of older generations
that its own index does not name.  So a reader never sees a half-written part, and two
processes saving at once cannot mix their parts (their generations differ; every file is
created exclusively).  Writing new files instead of renaming over old ones also spares ext4's
flush-on-replace (about a millisecond per replaced file here).  A corrupt, mismatched,
foreign-version, other-pricing or other-timezone cache is discarded as a whole, never trusted.
"""
from __future__ import annotations

import bisect
import collections
import itertools
import os
import time
import zlib
from array import array
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import msgspec

from . import pricing
from ._hash import blake2b
from .jsonl import key_hash

if TYPE_CHECKING:
    from typing import Callable

    from .jsonl import Row

    #: per-key sums: [input, cache_read, cache_create, output, cost, unpriced_rows] (ints, cost a float)
    Vec = list[Any]

FORMAT = "engine-cost/5"  # /3: smaller file signatures; /4: fewer shards; /5: generation-named files
# Shard counts trade a cold scan, which writes every shard (creating and renaming a file costs
# 0.3-0.5 ms on this machine's ext4), against a rescan, which rewrites the shards of the changed files.
SHARDS = 32   # Claude rows shards
FSHARDS = 4   # file metadata shards
KEYSLOTS = 1 << 19  # byte map of the stored key hashes (non-zero: "maybe stored"; never cleared)
KEYMASK = KEYSLOTS - 1


def _mark(slots: bytearray, values: Iterable[int]) -> None:
    """``slots[v & KEYMASK] = 1`` for every value, iterated in C."""
    collections.deque(map(slots.__setitem__, map(KEYMASK.__and__, values), itertools.repeat(1)), maxlen=0)


def _zero() -> Vec:
    return [0, 0, 0, 0, 0.0, 0]


def _vec_add(a: Vec, b: Any, sign: int = 1) -> None:
    """``a[i] += sign * b[i]`` for the six sums (unrolled: this runs for every agg key of every file)."""
    if sign == 1:  # (1 * x == x exactly, for ints and floats)
        a[0] += b[0]
        a[1] += b[1]
        a[2] += b[2]
        a[3] += b[3]
        a[4] += b[4]
        a[5] += b[5]
    else:
        for i, v in enumerate(b):
            a[i] += sign * v


def claude_vec(row: Row) -> tuple[int, int, int, int, float, int]:
    cost = row[7]
    return (row[2], row[3], row[4], row[6], cost or 0.0, 1 if cost is None else 0)


def claude_aggkey(row: Row) -> str:
    return f"{row[0]}|{row[1]}|{row[9]}"


def codex_vec(row: Row) -> tuple[int, int, int, int, float, int]:
    cost = row[7]
    return (row[4], row[5], 0, row[6], cost or 0.0, 1 if cost is None else 0)


def codex_aggkey(row: Row) -> str:
    return f"{row[2]}|{row[3]}|0"


def codex_row_keys(ident: str, rows: list[Row]) -> list[int]:
    """Each row's dedup key: :func:`key_hash` of ``ident`` and the row's identity and values,
    ``\\x1f``-joined (the hash of ``ident`` is taken once)."""
    head = blake2b(f"{ident}\x1f".encode(), digest_size=8)
    from_bytes = int.from_bytes
    out = []
    for r in rows:
        h = head.copy()
        h.update(f"{r[0] or ''}\x1f{r[1]}\x1f{r[2]}\x1f{r[3]}\x1f{r[4]}\x1f{r[5]}\x1f{r[6]}".encode())
        out.append(from_bytes(h.digest(), "little", signed=True))
    return out


def shard_of(path: str) -> int:
    return zlib.crc32(path.encode()) % SHARDS


def fshard_of(path: str) -> int:
    return shard_of(path) % FSHARDS


def _claude_rank(path: str, row: Row) -> tuple[int, int, bool, str]:
    return (-row[6], row[8], "/subagents/" in path, path)


def write_new(path: Path, data: bytes) -> None:
    """Create ``path`` (it must not exist) holding ``data``; on any failure nothing is left."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    except BaseException:
        try:
            os.unlink(path)
        except OSError:
            pass
        raise


def _gen_of(name: str) -> int | None:
    """The generation in a cache file's name (``…-<16 hex digits>.<ext>``), None if it has none."""
    stem = name.rsplit(".", 1)[0]
    tail = stem.rsplit("-", 1)[-1]
    if len(tail) != 16:
        return None
    try:
        g = int(tail, 16)
    except ValueError:
        return None
    return g if g < 1 << 63 else None  # (generations are stored as signed 64-bit integers)


def index_files(cache_dir: Path, kind: str) -> list[tuple[int, str]]:
    """``(generation, name)`` of the ``kind`` index files in ``cache_dir``, newest first."""
    prefix = f"cost-{kind}-index-"
    out = []
    try:
        with os.scandir(cache_dir) as it:
            for e in it:
                if e.name.startswith(prefix) and e.name.endswith(".json"):
                    g = _gen_of(e.name)
                    if g is not None:
                        out.append((g, e.name))
    except OSError:
        return []
    out.sort(reverse=True)
    return out


class CacheInvalid(Exception):
    pass


class RawRows:
    """A file's rows as the JSON bytes a pool worker produced (cheap to send back and to write
    into the cache); decoded only when the rows themselves are needed."""

    __slots__ = ("raw",)

    def __init__(self, raw: bytes):
        self.raw = raw

    def decode(self) -> Any:
        return msgspec.json.decode(self.raw)


def _raw_fragment(obj: Any) -> Any:
    if type(obj) is RawRows:
        return msgspec.Raw(obj.raw)
    raise TypeError


class Ledger:
    def __init__(self, kind: str, cache_dir: Path | None, tz_key: str):
        self.kind = kind
        self.cache_dir = cache_dir
        self.tz_key = tz_key
        self.stat: dict[str, list[Any]] = {}  # path -> [size, mtime_ns, ino, first_day, last_day]; file order
        self.gen = 0
        self.keys_gen = 0
        self.dups_gen = 0
        self.fshard_gen: list[int] = [0] * FSHARDS  # per-file metadata shards
        self.shard_gen: list[int] = [0] * SHARDS    # Claude rows shards
        # per-file metadata (offset/signature/parser state/agg), by shard, loaded on demand
        self._fsh: dict[int, dict[str, dict[str, Any]]] = {}
        self._dirty_fsh: set[int] = set()
        self.fshard_n: list[int] = [0] * FSHARDS    # entries per metadata shard
        self._dups: dict[int, Any] | None = {}
        self._dups_dirty = False
        # key hashes: the stored blob plus a byte map of the stored hashes (``_kdata``/``_kbits``),
        # searched per key, with what this scan changed on top (``_kover``, ``_knew``,
        # ``_kdropped``, ``_kextra``); never loaded into a dict of every key
        self._kdata: bytes | None = None                # stored [n, hashes...] per path of _kpaths
        self._kpaths: list[str] = []
        self._kstarts: list[int] | None = None
        self._kbits: bytearray | None = None
        self._kover: dict[int, str] = {}                # keymap assignments made on top of _kdata
        self._knew: dict[str, array[int]] = {}          # keys of the paths added on top of _kdata
        self._kdropped: set[str] = set()                # stored paths whose stored keys are gone
        self._kextra: dict[str, array[int]] = {}        # keys appended to a stored path (Codex)
        self._kadded: list[array[int] | list[int]] = []  # key lists added this run (for _kbits)
        self._shards: dict[int, dict[str, Any]] = {}
        self._row_index: dict[str, dict[int, Row]] = {}  # path -> key hash -> Claude row (see _claude_row_by_hash)
        self._dirty_shards: set[int] = set()
        # totals: ``raw`` = per-key sums over the files (stat order), before dups and rounding;
        # ``total`` = the result.  Kept incrementally: keys in ``_stale`` are re-summed from the
        # files holding them, keys in ``_dirty`` are re-finished (dups, rounding).
        self.raw: dict[str, Vec] | None = {}
        self.total: dict[str, Vec] | None = {}
        self._stale: set[str] = set()
        self._dirty: set[str] = set()
        self.skipped = 0
        self.changed = False
        self._sweep_gen = 0   # a save's deletion of older files, left for sweep()

    # ------------------------------------------------------------------ io
    def _p(self, name: str) -> Path:
        assert self.cache_dir is not None
        return self.cache_dir / name

    def _part(self, part: str, gen: int) -> Path:
        """The file of ``part`` (``files-<nn>``, ``rows-<nn>``, ``keys``, ``dups``, ``index``) at ``gen``."""
        return self._p(f"cost-{self.kind}-{part}-{gen:016x}.{'bin' if part == 'keys' else 'json'}")

    def _header(self) -> dict[str, Any]:
        return {"format": FORMAT, "kind": self.kind, "pricing": pricing.pricing_fingerprint(), "tz": self.tz_key}

    @classmethod
    def load(cls, kind: str, cache_dir: Path | None, tz_key: str) -> "Ledger":
        if cache_dir is None:
            return cls(kind, cache_dir, tz_key)
        for gen, name in index_files(cache_dir, kind):  # (the newest that decodes; normally the only one)
            led = cls._load_index(kind, cache_dir, tz_key, gen, name)
            if led is not None:
                return led
        return cls(kind, cache_dir, tz_key)

    @classmethod
    def _load_index(cls, kind: str, cache_dir: Path, tz_key: str, gen: int, name: str) -> "Ledger | None":
        led = cls(kind, cache_dir, tz_key)
        try:
            raw = led._p(name).read_bytes()
        except OSError:
            return None
        try:
            doc = msgspec.json.decode(raw)
            if type(doc) is not dict or doc.get("header") != led._header() or doc.get("gen") != gen:
                raise CacheInvalid
            led.stat = doc["stat"]
            led.total = doc["total"]
            led.raw = doc["raw"]
            led.skipped = int(doc["skipped"])
            led.gen = int(doc["gen"])
            led.keys_gen = int(doc["keys_gen"])
            led.dups_gen = int(doc["dups_gen"])
            led.fshard_gen = list(doc["fshard_gen"])
            led.fshard_n = list(doc["fshard_n"])
            led.shard_gen = list(doc["shard_gen"])
            if (type(led.stat) is not dict or type(led.total) is not dict or type(led.raw) is not dict
                    or len(led.shard_gen) != SHARDS or len(led.fshard_gen) != FSHARDS
                    or len(led.fshard_n) != FSHARDS or sum(led.fshard_n) != len(led.stat)):
                raise CacheInvalid
        except (CacheInvalid, msgspec.DecodeError, KeyError, TypeError, ValueError, AttributeError):
            return None
        led._dups = None  # loaded on first use
        return led

    def _read_part(self, part: str, gen: int, field: str) -> Any:
        """``field`` of the JSON part file ``part`` at ``gen``, which must say it is of that generation;
        anything else (missing, unreadable, another generation) makes the cache invalid."""
        try:
            doc = msgspec.json.decode(self._part(part, gen).read_bytes())
            if type(doc) is not dict or doc.get("gen") != gen:
                raise CacheInvalid
            return doc[field]
        except (OSError, msgspec.DecodeError, KeyError, ValueError) as exc:  # (ValueError: bad UTF-8 too)
            raise CacheInvalid from exc

    def _fshard(self, b: int) -> dict[str, dict[str, Any]]:
        sh = self._fsh.get(b)
        if sh is None:
            sh = {}
            if self.fshard_gen[b]:
                sh = self._read_part(f"files-{b:02d}", self.fshard_gen[b], "files")
            # (the counts add up to the number of files, and every entry is a listed file)
            if type(sh) is not dict or len(sh) != self.fshard_n[b] or not sh.keys() <= self.stat.keys():
                raise CacheInvalid
            self._fsh[b] = sh
        return sh

    def meta(self, path: str) -> dict[str, Any] | None:
        """The entry of ``path`` (``None`` if not in the ledger); loads only its shard."""
        if path not in self.stat:
            return None
        try:
            return self._fshard(fshard_of(path))[path]
        except KeyError as exc:
            raise CacheInvalid from exc

    @property
    def files(self) -> dict[str, dict[str, Any]]:
        """Every entry, in file order (loads all metadata shards)."""
        return {p: self.meta(p) for p in self.stat}  # type: ignore[misc]  # (never None: p is in stat)

    @property
    def dups(self) -> dict[int, Any]:
        if self._dups is None:
            dups: dict[int, Any] = {}
            if self.dups_gen:
                stored = self._read_part("dups", self.dups_gen, "dups")
                try:
                    dups = {int(k): v for k, v in stored.items()}
                except (AttributeError, TypeError, ValueError) as exc:
                    raise CacheInvalid from exc
            self._dups = dups
        return self._dups

    def _read_keys(self) -> None:
        """Read the stored key hashes into ``_kdata``/``_kbits`` (no per-key work)."""
        if self._kdata is not None:
            return
        self._kpaths = list(self.stat)
        if not self.stat:
            self._kdata = b""
            return
        try:
            blob = self._part("keys", self.keys_gen).read_bytes()
            head = array("q")
            head.frombytes(blob[:24])
            if head[0] != self.keys_gen or head[1] != len(self.stat) or head[2] != KEYSLOTS:
                raise CacheInvalid
            view = memoryview(blob)
            self._kbits = bytearray(view[24:24 + KEYSLOTS])  # (one copy each, none in between)
            self._kdata = bytes(view[24 + KEYSLOTS:])
            view.release()
            if len(self._kdata) % 8:
                raise CacheInvalid
        except (OSError, CacheInvalid, IndexError, ValueError) as exc:
            raise CacheInvalid from exc

    def keys_by_path(self) -> dict[str, array[int]]:
        """Every file's key hashes as this scan left them, in file order (a full view, built on
        demand: for checks; the scan itself never needs it)."""
        self._read_keys()
        assert self._kdata is not None
        data = array("q")
        data.frombytes(self._kdata)
        out: dict[str, array[int]] = {}
        pos = 0
        for path in self._kpaths:
            n = data[pos]
            if path not in self._kdropped:
                hs = out[path] = data[pos + 1:pos + 1 + n]
                hs.extend(self._kextra.get(path, array("q")))
            pos += 1 + n
        if pos != len(data):
            raise CacheInvalid
        for path, new in self._knew.items():
            out[path] = array("q", new)
        return {p: out[p] for p in self.stat if p in out}

    def _owner(self, h: int) -> str | None:
        """A path holding key hash ``h``: set in this scan, else the last one in file order."""
        p = self._kover.get(h)
        if p is not None:
            return p
        bits = self._kbits
        if bits is None or not bits[h & KEYMASK]:
            return None
        data = self._kdata
        assert data is not None
        self._starts()
        assert self._kstarts is not None
        dropped = self._kdropped
        pat = array("q", [h]).tobytes()
        end = len(data)
        while True:
            at = data.rfind(pat, 0, end)
            if at < 0:
                return None
            end = at + 7
            if at % 8:
                continue
            slot = at // 8
            j = bisect.bisect_right(self._kstarts, slot) - 1
            if self._kstarts[j] != slot and self._kpaths[j] not in dropped:  # a hash (not a count) still held
                return self._kpaths[j]

    def _starts(self) -> list[int]:
        """Where each stored path's ``[n, hashes...]`` starts in ``_kdata`` (in 8-byte slots)."""
        if self._kstarts is None:
            assert self._kdata is not None
            counts = array("q")
            counts.frombytes(self._kdata)
            starts, pos = [], 0
            try:
                for _ in self._kpaths:
                    starts.append(pos)
                    pos += 1 + counts[pos]
            except IndexError as exc:
                raise CacheInvalid from exc
            if pos != len(counts):  # (the blob holds exactly one [n, hashes...] run per file)
                raise CacheInvalid
            self._kstarts = starts
        return self._kstarts

    def _stored_keys(self, path: str) -> array[int]:
        """The key hashes stored for ``path`` (empty if it has none, or they are gone)."""
        out = array("q")
        if path in self._kdropped or self._kdata is None:
            return out
        try:
            j = self._kpaths.index(path)
        except ValueError:
            return out
        start = self._starts()[j]
        data = self._kdata
        n = int.from_bytes(data[start * 8:start * 8 + 8], "little", signed=True)
        out.frombytes(data[(start + 1) * 8:(start + 1 + n) * 8])
        return out

    def _unown(self, h: int, path: str) -> None:
        """``path`` no longer holds ``h`` (a key of no dup: nothing else holds it either)."""
        if self._kover.get(h) == path:
            del self._kover[h]
        # (as stored: ``path`` is dropped, so _owner skips its stored copy of ``h``)

    def _set_owner(self, h: int, path: str) -> None:
        self._kover[h] = path

    def _shard(self, b: int) -> dict[str, Any]:
        sh = self._shards.get(b)
        if sh is None:
            sh = {}
            if self.shard_gen[b]:
                sh = self._read_part(f"rows-{b:02d}", self.shard_gen[b], "files")
            self._shards[b] = sh
        return sh

    def claude_rows(self, path: str) -> dict[str, Any]:
        sh = self._shard(shard_of(path))
        rows = sh.get(path)
        if type(rows) is RawRows:
            rows = sh[path] = rows.decode()
        return rows or {"rows": {}, "unkeyed": []}

    def save(self, sweep: bool = True) -> None:
        """Write what changed as new files of a new generation, the index last (naming the
        generation of every part), then delete the older files the new index does not name
        (with ``sweep=False``: when :meth:`sweep` is called, e.g. after the results went out)."""
        if self.cache_dir is None or not self.changed:
            return
        self.totals()
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        # unique per save, also between processes (their clocks tick apart), and newer than every
        # index here (even after the clock was set back: readers take the newest index)
        newest = index_files(self.cache_dir, self.kind)
        gen = min(max(time.time_ns(), self.gen + 1, newest[0][0] + 1 if newest else 0), (1 << 63) - 1)
        written: list[Path] = []

        def write(part: str, data: bytes) -> None:
            path = self._part(part, gen)
            write_new(path, data)
            written.append(path)

        try:
            self._write_parts(gen, write)
        except BaseException:
            for path in written:  # (an index was not written: nothing refers to them)
                try:
                    os.unlink(path)
                except OSError:
                    pass
            raise
        if sweep:
            self._sweep(gen)
        else:
            self._sweep_gen = gen

    @property
    def needs_sweep(self) -> bool:
        return bool(self._sweep_gen)

    def sweep(self) -> None:
        """The deletion a ``save(sweep=False)`` left to do (nothing if there is none)."""
        gen, self._sweep_gen = self._sweep_gen, 0
        if gen:
            self._sweep(gen)

    def _sweep(self, gen: int) -> None:
        """Delete this kind's files that the index of ``gen`` does not name and that are older
        than it (a save running at the same time in another process may be newer: left alone)."""
        names = {self._part("index", gen).name}
        names.update(self._part(f"files-{b:02d}", g).name for b, g in enumerate(self.fshard_gen) if g)
        if self.kind == "claude":
            names.update(self._part(f"rows-{b:02d}", g).name for b, g in enumerate(self.shard_gen) if g)
        if self.keys_gen:
            names.add(self._part("keys", self.keys_gen).name)
        if self.dups_gen:
            names.add(self._part("dups", self.dups_gen).name)
        prefix = f"cost-{self.kind}-"
        try:
            with os.scandir(self.cache_dir) as it:
                stale = [e.path for e in it if e.name.startswith(prefix) and e.name not in names
                         and (_gen_of(e.name) or 0) < gen]
        except OSError:
            return
        for path in stale:
            try:
                os.unlink(path)
            except OSError:
                pass

    def _write_parts(self, gen: int, write: Callable[[str, bytes], None]) -> None:
        for b in sorted(self._dirty_shards):
            self.shard_gen[b] = gen
            write(f"rows-{b:02d}", msgspec.json.encode({"gen": gen, "files": self._shards[b]}, enc_hook=_raw_fragment))
        for b in sorted(self._dirty_fsh):
            sh = self._fsh[b]
            self.fshard_gen[b] = gen if sh else 0
            if sh:
                write(f"files-{b:02d}", msgspec.json.encode({"gen": gen, "files": sh}))
        if self._kdata is not None:
            bits = self._kbits
            fresh = bits is None
            if bits is None:
                bits = bytearray(KEYSLOTS)
            else:
                for added in self._kadded:
                    _mark(bits, added)
            hs: array[int] | None
            if (not self._kdropped and not self._kextra
                    and list(self.stat)[len(self._kpaths):] == list(self._knew)):
                # only added files: they follow the stored ones in file order
                data = array("q")
                for hs in self._knew.values():
                    data.append(len(hs))
                    data.extend(hs)
                if fresh:
                    _mark(bits, data)
                body = self._kdata + data.tobytes()
                self._kdata, self._kstarts = body, None
                self._kpaths.extend(self._knew)
                self._knew = {}
            else:  # files replaced or extended too: each file's keys in file order, stored ones copied
                assert self._kdata is not None
                stored = self._kdata
                starts = self._starts()
                index = {p: j for j, p in enumerate(self._kpaths)}
                parts: list[bytes] = []
                for path in self.stat:
                    hs = self._knew.get(path)
                    if hs is None:
                        j = index.get(path)
                        if j is None or path in self._kdropped:
                            hs = array("q")
                        else:
                            start = starts[j]
                            n = int.from_bytes(stored[start * 8:start * 8 + 8], "little", signed=True)
                            extra = self._kextra.get(path)
                            if extra is None:
                                parts.append(stored[start * 8:(start + 1 + n) * 8])
                                continue
                            hs = array("q")
                            hs.frombytes(stored[(start + 1) * 8:(start + 1 + n) * 8])
                            hs.extend(extra)
                    parts.append(array("q", [len(hs)]).tobytes() + hs.tobytes())
                body = b"".join(parts)
                if fresh:
                    data = array("q")
                    data.frombytes(body)
                    _mark(bits, data)
                self._kdata, self._kstarts = body, None
                self._kpaths = list(self.stat)
                self._knew, self._kdropped, self._kextra = {}, set(), {}
            self._kbits, self._kadded = bits, []
            head = array("q", [gen, len(self.stat), KEYSLOTS])
            write("keys", head.tobytes() + bytes(bits) + body)
            self.keys_gen = gen
        if self._dups is not None and self._dups_dirty:
            write("dups", msgspec.json.encode({"gen": gen, "dups": {str(k): v for k, v in self._dups.items()}}))
            self.dups_gen = gen
            self._dups_dirty = False
        self.gen = gen
        doc = {"header": self._header(), "gen": gen, "keys_gen": self.keys_gen, "dups_gen": self.dups_gen,
               "fshard_gen": self.fshard_gen, "fshard_n": self.fshard_n, "shard_gen": self.shard_gen, "stat": self.stat,
               "total": self.totals(), "raw": self.raw, "skipped": self.skipped_lines()}
        write("index", msgspec.json.encode(doc))
        self._dirty_shards.clear()
        self._dirty_fsh.clear()
        self.changed = False

    # ------------------------------------------------------------------ mutation
    def _agg_changed(self, keys: Iterable[str], stale: bool) -> None:
        if stale:
            self._stale.update(keys)
        self._dirty.update(keys)

    def _dup_changed(self, dup: Any) -> None:
        self._dups_dirty = True
        if self.kind == "claude":
            self._dirty.update(claude_aggkey(row) for row in dup.values())
        else:
            self._dirty.add(codex_aggkey(dup["row"]))

    def _set_meta(self, path: str, meta: dict[str, Any]) -> None:
        b = fshard_of(path)
        sh = self._fshard(b)
        new = path not in self.stat
        sh[path] = meta
        self._dirty_fsh.add(b)
        days = meta.get("days") or [None, None]
        self.stat[path] = [meta["size"], meta["mtime"], meta["ino"], days[0], days[1]]
        if new:
            self.fshard_n[b] += 1
        self.skipped += meta.get("skipped", 0) + meta.get("tail_bad", 0)

    def remove(self, path: str) -> None:
        """Forget ``path`` (deleted, rewritten or out of scope) and its keys."""
        self._row_index.pop(path, None)
        if path not in self.stat:
            return
        # this file's keys from the blob (plus this scan's): no per-key work for the others
        self._read_keys()
        hs = self._stored_keys(path)
        hs.extend(self._kextra.pop(path, array("q")))
        hs.extend(self._knew.pop(path, array("q")))
        if path in self._kpaths:
            self._kdropped.add(path)
        dups = self.dups
        for h in hs:
            dup = dups.get(h)
            if dup is None:
                self._unown(h, path)
                continue
            self._dup_changed(dup)
            if self.kind == "claude":
                dup.pop(path, None)
                left = list(dup)
            else:
                if path in dup["files"]:
                    dup["files"].remove(path)
                left = dup["files"]
            if len(left) <= 1:
                del dups[h]
            if left:
                self._set_owner(h, left[0])
            else:
                self._unown(h, path)
        fb = fshard_of(path)
        old: dict[str, Any] = self.meta(path)  # type: ignore[assignment]  # (path is in stat)
        del self._fsh[fb][path]
        self._dirty_fsh.add(fb)
        self.fshard_n[fb] -= 1
        self._agg_changed(old["agg"], True)
        self.skipped -= old.get("skipped", 0) + old.get("tail_bad", 0)
        del self.stat[path]
        if self.kind == "claude":
            b = shard_of(path)
            if self._shard(b).pop(path, None) is not None:
                self._dirty_shards.add(b)
        self.changed = True

    def put(self, path: str, meta: dict[str, Any], rows: Any, key_list: list[int] | array[int]) -> None:
        """Record (or replace) ``path``: ``meta`` = entry fields incl. ``agg``; ``rows`` = Claude
        ``{"rows", "unkeyed"}`` or Codex row list (to seed dups), either may come as
        :class:`RawRows` (decoded only if a key turns out to be a dup); ``key_list`` aligned
        with the (keyed) rows."""
        self.remove(path)
        self._read_keys()
        self._set_meta(path, meta)
        # the file is now the last one, so its sums come last, as in a full re-sum
        raw, stale = self.raw, self._stale
        if raw is not None:
            for k, v in meta["agg"].items():
                if k in stale:
                    continue
                a = raw.get(k)
                if a is None:
                    raw[k] = a = _zero()
                _vec_add(a, v)
        self._agg_changed(meta["agg"], False)
        hs = key_list if type(key_list) is array else array("q", key_list)
        self._knew[path] = hs
        self._kadded.append(hs)
        claude = self.kind == "claude"
        if claude:
            b = shard_of(path)
            self._shard(b)[path] = rows
            self._dirty_shards.add(b)
        if not self._kdata:
            # nothing stored: this scan's dict holds every key, plain dict operations
            km = self._kover
            if km.keys().isdisjoint(key_list):
                # every key is new (a cold scan, mostly): each is owned by this file, in C
                # (a key in a dup always has an owner, so none of these is in one)
                km.update(zip(key_list, itertools.repeat(path)))
                self.changed = True
                return
            owner: Callable[[int], str | None]
            set_owner: Callable[[int, str], None]
            owner, set_owner = km.get, km.__setitem__
        else:
            owner, set_owner = self._owner, self._set_owner
        link = self._link_claude if claude else self._link_codex
        row_list: list[Row] | None = None
        if type(rows) is not RawRows:
            row_list = list(rows["rows"].values()) if claude else rows
        for i, h in enumerate(key_list):
            other = owner(h)
            if other is None:
                set_owner(h, path)  # a new key; never in a dup (dup keys are owned): dups stay unread
                continue
            if other == path and h not in self.dups:
                continue
            if row_list is None:
                dec = rows.decode()
                row_list = list(dec["rows"].values()) if claude else dec
            link(h, path, row_list[i])
        self.changed = True

    def extend_codex(self, path: str, meta: dict[str, Any], new_rows: list[Row], new_keys: list[int]) -> None:
        """Appended Codex bytes: ``meta`` already holds the merged ``agg``; link the new keys."""
        self._read_keys()
        old = self.meta(path)
        if old is not None:
            self.skipped -= old.get("skipped", 0) + old.get("tail_bad", 0)
            self._agg_changed(old["agg"], True)
        self._set_meta(path, meta)
        self._agg_changed(meta["agg"], True)
        if path in self._knew:
            self._knew[path].extend(new_keys)
        elif path in self._kpaths and path not in self._kdropped:
            self._kextra.setdefault(path, array("q")).extend(new_keys)
        else:
            self._knew[path] = array("q", new_keys)
        self._kadded.append(new_keys)
        for row, h in zip(new_rows, new_keys):
            self._link_codex(h, path, row)
        self.changed = True

    def _link_claude(self, h: int, path: str, row: Row) -> None:
        dup = self.dups.get(h)
        if dup is not None:
            dup[path] = row
            self._dup_changed(dup)
            return
        other = self._owner(h)
        if other is None or other == path:
            self._set_owner(h, path)
            return
        other_row = self._claude_row_by_hash(other, h)
        if other_row is None:  # hash collision between different keys: treat as distinct
            return
        dup = self.dups[h] = {other: other_row, path: row}
        self._dup_changed(dup)

    def _claude_row_by_hash(self, path: str, h: int) -> Row | None:
        index = self._row_index.get(path)
        if index is None:
            # built once per file and scan: a resumed session shares many keys with its original
            index = self._row_index[path] = {key_hash(k): row for k, row in self.claude_rows(path)["rows"].items()}
        return index.get(h)

    def _link_codex(self, h: int, path: str, row: Row) -> None:
        dup = self.dups.get(h)
        if dup is not None:
            dup["files"].append(path)
            self._dup_changed(dup)
            return
        other = self._owner(h)
        if other is None or other == path:
            self._set_owner(h, path)
            return
        dup = self.dups[h] = {"row": row, "files": [other, path]}
        self._dup_changed(dup)

    # ------------------------------------------------------------------ totals
    def totals(self) -> dict[str, Vec]:
        """``"day|model|vertex"`` -> [input, cache_read, cache_create, output, cost, unpriced_rows].

        Every key's sums are computed as by a full pass -- the files' ``agg`` in file order,
        then the dups' surplus copies in dup order, then rounding -- but only for the keys that
        a change touched (bit-identical to re-summing everything)."""
        if self.total is not None and self.raw is not None and not self._dirty:
            return self.total
        if self.total is None or self.raw is None:  # no usable sums: re-sum every key
            self._stale = set()
            only: set[str] | None = None
            raw: dict[str, Vec] = {}
            for meta in self.files.values():
                for k, v in meta["agg"].items():
                    a = raw.get(k)
                    if a is None:
                        raw[k] = a = _zero()
                    _vec_add(a, v)
            total: dict[str, Vec] = {}
        else:
            only = self._dirty
            raw, total = self.raw, self.total
            stale = self._stale
            if stale:
                days = {k.split("|", 1)[0] for k in stale}
                lo, hi = min(days), max(days)
                for k in stale:
                    raw.pop(k, None)
                for path, st in self.stat.items():
                    first, last = st[3], st[4]
                    if first is None or last < lo or first > hi:
                        continue
                    for k, v in self.meta(path)["agg"].items():  # type: ignore[index]  # (path is in stat)
                        if k in stale:
                            a = raw.get(k)
                            if a is None:
                                raw[k] = a = _zero()
                            _vec_add(a, v)
                self._stale = set()
        tot = {k: list(v) for k, v in raw.items()} if only is None else \
            {k: list(raw[k]) for k in only if k in raw}
        for dup in self.dups.values():
            if self.kind == "claude":
                if only is not None and not any(claude_aggkey(row) in only for row in dup.values()):
                    continue
                ranked = sorted(dup.items(), key=lambda pr: _claude_rank(pr[0], pr[1]))
                for _, row in ranked[1:]:
                    k = claude_aggkey(row)
                    if only is None or k in only:
                        _vec_add(tot[k], claude_vec(row), -1)
            else:
                n = len(dup["files"]) - 1
                k = codex_aggkey(dup["row"])
                if n > 0 and (only is None or k in only):
                    _vec_add(tot[k], [n * x for x in codex_vec(dup["row"])], -1)
        if only is not None:
            for k in only:
                total.pop(k, None)
        for k, v in tot.items():
            v[4] = round(v[4], 10)
            if any(v[:4]):
                total[k] = v
        # a canonical key order, whichever way the sums were reached
        self.total = dict(sorted(total.items()))
        self.raw = raw
        self._dirty = set()
        self.changed = True
        return self.total

    def skipped_lines(self) -> int:
        return self.skipped


def aggregate_claude(rows: Iterable[Row]) -> tuple[dict[str, Vec], list[str] | None]:
    """Per ``claude_aggkey(row)``, the sum of ``claude_vec(row)`` over the rows in order, and the
    rows' ``[first, last]`` day (``None`` without rows), in one unrolled pass (bit-identical to
    adding each row's vector to zeros in order; tests/cost checks it)."""
    agg: dict[str, Vec] = {}
    get = agg.get
    days: set[str] = set()
    add_day = days.add
    for r in rows:
        day = r[0]
        add_day(day)
        k = f"{day}|{r[1]}|{r[9]}"
        cost = r[7]
        a = get(k)
        if a is None:
            # 0 + x == x and 0.0 + c == c exactly: starting from the row equals adding it to zero
            agg[k] = [r[2], r[3], r[4], r[6], 0.0 if cost is None else cost, 1 if cost is None else 0]
        else:
            a[0] += r[2]
            a[1] += r[3]
            a[2] += r[4]
            a[3] += r[6]
            if cost is None:
                a[4] += 0.0
                a[5] += 1
            else:
                a[4] += cost
    return agg, ([min(days), max(days)] if days else None)


def aggregate_codex(rows: Iterable[Row]) -> tuple[dict[str, Vec], list[str] | None]:
    """:func:`aggregate_claude` for Codex rows (``codex_aggkey``, ``codex_vec``)."""
    agg: dict[str, Vec] = {}
    get = agg.get
    days: set[str] = set()
    add_day = days.add
    for r in rows:
        day = r[2]
        add_day(day)
        k = f"{day}|{r[3]}|0"
        cost = r[7]
        a = get(k)
        if a is None:
            agg[k] = [r[4], r[5], 0, r[6], 0.0 if cost is None else cost, 1 if cost is None else 0]
        else:
            a[0] += r[4]
            a[1] += r[5]
            a[3] += r[6]
            if cost is None:
                a[4] += 0.0
                a[5] += 1
            else:
                a[4] += cost
    return agg, ([min(days), max(days)] if days else None)

