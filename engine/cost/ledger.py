"""The incremental per-file ledger behind a cost scan, and its on-disk cache.

Each scanned file contributes ``agg`` -- sums per ``"day|model|vertex"`` of all its rows
(after the in-file dedup) -- plus the 64-bit hashes of its dedup keys.  A key present in
more than one file is a *dup*; its surplus copies are subtracted from the total:

* Claude: the copy with the most output tokens (the final streamed chunk) wins, then a
  non-sidechain row, then a path without ``/subagents/``, then the smallest path;
* Codex: rows are identical by construction (the key holds the values); one copy counts.

Only changed files are re-parsed, so a rescan costs ``O(changed bytes + changed keys)``.

Cache files in ``cache_dir`` (all written atomically, tmp + ``os.replace``)::

    cost-<kind>-index.json      files' stat + the total: all a scan with nothing changed reads
    cost-<kind>-files.json      files' offset/signature/parser state/agg, the dups
    cost-<kind>-keys.bin        every file's key hashes (read only when something changed)
    cost-claude-rows-<nn>.json  Claude rows, 64 shards by path (read for changed files only)

Every file carries the index's generation ids; a corrupt, foreign-version, other-pricing or
other-timezone cache is discarded as a whole, never trusted.
"""
from __future__ import annotations

import os
import tempfile
import zlib
from array import array
from pathlib import Path
from typing import Any, Iterable

import orjson

from . import pricing
from .jsonl import key_hash

FORMAT = "engine-cost/1"
SHARDS = 64
VEC = 6  # input, cache_read, cache_create, output, cost, unpriced_rows


def _zero() -> list:
    return [0, 0, 0, 0, 0.0, 0]


def _vec_add(a: list, b: Iterable, sign: int = 1) -> None:
    for i, v in enumerate(b):
        a[i] += sign * v


def claude_vec(row: list) -> tuple:
    cost = row[7]
    return (row[2], row[3], row[4], row[6], cost or 0.0, 1 if cost is None else 0)


def claude_aggkey(row: list) -> str:
    return f"{row[0]}|{row[1]}|{row[9]}"


def codex_vec(row: list) -> tuple:
    cost = row[7]
    return (row[4], row[5], 0, row[6], cost or 0.0, 1 if cost is None else 0)


def codex_aggkey(row: list) -> str:
    return f"{row[2]}|{row[3]}|0"


def codex_row_key(ident: str, row: list) -> int:
    return key_hash("\x1f".join((ident, row[0] or "", str(row[1]), row[2], row[3],
                                 str(row[4]), str(row[5]), str(row[6]))))


def shard_of(path: str) -> int:
    return zlib.crc32(path.encode()) % SHARDS


def _claude_rank(path: str, row: list) -> tuple:
    return (-row[6], row[8], "/subagents/" in path, path)


def atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class CacheInvalid(Exception):
    pass


class RawRows:
    """A file's rows as the JSON bytes a pool worker produced (cheap to send back and to write
    into the cache); decoded only when the rows themselves are needed."""

    __slots__ = ("raw",)

    def __init__(self, raw: bytes):
        self.raw = raw

    def decode(self) -> Any:
        return orjson.loads(self.raw)


def _raw_fragment(obj: Any) -> Any:
    if type(obj) is RawRows:
        return orjson.Fragment(obj.raw)
    raise TypeError


class Ledger:
    def __init__(self, kind: str, cache_dir: Path | None, tz_key: str):
        self.kind = kind
        self.cache_dir = cache_dir
        self.tz_key = tz_key
        self._files: dict[str, dict[str, Any]] | None = {}
        self._dups: dict[int, Any] = {}
        self.stat: dict[str, list] = {}       # path -> [size, mtime_ns, ino, first_day, last_day]
        self.total: dict[str, list] | None = None
        self.skipped = 0
        self.gen = 0
        self.files_gen = 0
        self.shard_gen: list[int] = [0] * SHARDS
        self.keys_gen = 0
        self._keys: dict[str, array] | None = None      # path -> key hashes
        self._keymap: dict[int, str] | None = None      # hash -> a path holding it
        self._shards: dict[int, dict[str, Any]] = {}
        self._dirty_shards: set[int] = set()
        self.changed = False

    # ------------------------------------------------------------------ io
    def _p(self, name: str) -> Path:
        assert self.cache_dir is not None
        return self.cache_dir / name

    def _header(self) -> dict[str, Any]:
        return {"format": FORMAT, "kind": self.kind, "pricing": pricing.pricing_fingerprint(), "tz": self.tz_key}

    @classmethod
    def load(cls, kind: str, cache_dir: Path | None, tz_key: str) -> "Ledger":
        led = cls(kind, cache_dir, tz_key)
        if cache_dir is None:
            return led
        try:
            raw = led._p(f"cost-{kind}-index.json").read_bytes()
        except OSError:
            return led
        try:
            doc = orjson.loads(raw)
            if type(doc) is not dict or doc.get("header") != led._header():
                raise CacheInvalid
            led.stat = doc["stat"]
            led.total = doc["total"]
            led.skipped = int(doc["skipped"])
            led.gen = int(doc["gen"])
            led.files_gen = int(doc["files_gen"])
            led.shard_gen = list(doc["shard_gen"])
            led.keys_gen = int(doc["keys_gen"])
            if type(led.stat) is not dict or type(led.total) is not dict or len(led.shard_gen) != SHARDS:
                raise CacheInvalid
        except (CacheInvalid, orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
            return cls(kind, cache_dir, tz_key)
        led._files = None  # loaded on first use
        return led

    @property
    def files(self) -> dict[str, dict[str, Any]]:
        if self._files is None:
            try:
                doc = orjson.loads(self._p(f"cost-{self.kind}-files.json").read_bytes())
                if doc.get("gen") != self.files_gen or set(doc["files"]) != set(self.stat):
                    raise CacheInvalid
                self._files = doc["files"]
                self._dups = {int(k): v for k, v in doc["dups"].items()}
            except (OSError, orjson.JSONDecodeError, KeyError, AttributeError, TypeError, ValueError) as exc:
                raise CacheInvalid from exc
        return self._files

    @property
    def dups(self) -> dict[int, Any]:
        self.files  # noqa: B018 - dups live in the same file
        return self._dups

    def _load_keys(self) -> None:
        if self._keys is not None:
            return
        keys: dict[str, array] = {}
        if self.files:
            try:
                blob = self._p(f"cost-{self.kind}-keys.bin").read_bytes()
                head = array("q")
                head.frombytes(blob[:16])
                if head[0] != self.keys_gen:
                    raise CacheInvalid
                data = array("q")
                data.frombytes(blob[16:])
                order = list(self.files)
                pos = 0
                for i, path in enumerate(order):
                    n = data[pos]
                    keys[path] = data[pos + 1:pos + 1 + n]
                    pos += 1 + n
                if pos != len(data) or head[1] != len(order):
                    raise CacheInvalid
            except (OSError, CacheInvalid, IndexError, ValueError) as exc:
                raise CacheInvalid from exc
        self._keys = keys
        keymap: dict[int, str] = {}
        for path, hs in keys.items():
            for h in hs:
                keymap[h] = path
        self._keymap = keymap

    def _shard(self, b: int) -> dict[str, Any]:
        sh = self._shards.get(b)
        if sh is None:
            sh = {}
            if self.shard_gen[b]:
                try:
                    doc = orjson.loads(self._p(f"cost-claude-rows-{b:02d}.json").read_bytes())
                    if doc.get("gen") != self.shard_gen[b]:
                        raise CacheInvalid
                    sh = doc["files"]
                except (OSError, orjson.JSONDecodeError, KeyError, AttributeError) as exc:
                    raise CacheInvalid from exc
            self._shards[b] = sh
        return sh

    def claude_rows(self, path: str) -> dict[str, Any]:
        sh = self._shard(shard_of(path))
        rows = sh.get(path)
        if type(rows) is RawRows:
            rows = sh[path] = rows.decode()
        return rows or {"rows": {}, "unkeyed": []}

    def save(self) -> None:
        if self.cache_dir is None or not self.changed:
            return
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        gen = (self.gen + 1) or 1
        for b in sorted(self._dirty_shards):
            self.shard_gen[b] = gen
            atomic_write(self._p(f"cost-claude-rows-{b:02d}.json"),
                         orjson.dumps({"gen": gen, "files": self._shards[b]}, default=_raw_fragment))
        if self._keys is not None:
            data = array("q")
            for path in self.files:
                hs = self._keys.get(path, array("q"))
                data.append(len(hs))
                data.extend(hs)
            head = array("q", [gen, len(self.files)])
            atomic_write(self._p(f"cost-{self.kind}-keys.bin"), head.tobytes() + data.tobytes())
            self.keys_gen = gen
        if self._files is not None:
            atomic_write(self._p(f"cost-{self.kind}-files.json"),
                         orjson.dumps({"gen": gen, "files": self._files,
                                       "dups": {str(k): v for k, v in self._dups.items()}}))
            self.files_gen = gen
        self.gen = gen
        doc = {"header": self._header(), "gen": gen, "keys_gen": self.keys_gen, "files_gen": self.files_gen,
               "shard_gen": self.shard_gen, "stat": self.stat, "total": self.totals(),
               "skipped": self.skipped_lines()}
        atomic_write(self._p(f"cost-{self.kind}-index.json"), orjson.dumps(doc))
        self._dirty_shards.clear()
        self.changed = False

    # ------------------------------------------------------------------ mutation
    def remove(self, path: str) -> None:
        """Forget ``path`` (deleted, rewritten or out of scope) and its keys."""
        if path not in self.files:
            return
        self._load_keys()
        assert self._keys is not None and self._keymap is not None
        hs = self._keys.pop(path, array("q"))
        for h in hs:
            dup = self.dups.get(h)
            if dup is None:
                if self._keymap.get(h) == path:
                    del self._keymap[h]
                continue
            if self.kind == "claude":
                dup.pop(path, None)
                left = list(dup)
            else:
                if path in dup["files"]:
                    dup["files"].remove(path)
                left = dup["files"]
            if len(left) <= 1:
                del self.dups[h]
            if left:
                self._keymap[h] = left[0]
            else:
                self._keymap.pop(h, None)
        del self.files[path]
        self.stat.pop(path, None)
        if self.kind == "claude":
            b = shard_of(path)
            if self._shard(b).pop(path, None) is not None:
                self._dirty_shards.add(b)
        self.total = None
        self.skipped = -1
        self.changed = True

    def put(self, path: str, meta: dict[str, Any], rows: Any, key_list: list[int]) -> None:
        """Record (or replace) ``path``: ``meta`` = entry fields incl. ``agg``; ``rows`` = Claude
        ``{"rows", "unkeyed"}`` or Codex row list (to seed dups), either may come as
        :class:`RawRows` (decoded only if a key turns out to be a dup); ``key_list`` aligned
        with the (keyed) rows."""
        self.remove(path)
        self._load_keys()
        assert self._keys is not None and self._keymap is not None
        self.files[path] = meta
        self._set_stat(path, meta)
        self._keys[path] = array("q", key_list)
        claude = self.kind == "claude"
        if claude:
            b = shard_of(path)
            self._shard(b)[path] = rows
            self._dirty_shards.add(b)
        keymap = self._keymap
        dups = self.dups
        link = self._link_claude if claude else self._link_codex
        row_list: list | None = None
        if type(rows) is not RawRows:
            row_list = list(rows["rows"].values()) if claude else rows
        for i, h in enumerate(key_list):
            if h not in dups:
                other = keymap.get(h)
                if other is None or other == path:
                    keymap[h] = path
                    continue
            if row_list is None:
                dec = rows.decode()
                row_list = list(dec["rows"].values()) if claude else dec
            link(h, path, row_list[i])
        self.total = None
        self.changed = True

    def extend_codex(self, path: str, meta: dict[str, Any], new_rows: list, new_keys: list[int]) -> None:
        """Appended Codex bytes: ``meta`` already holds the merged ``agg``; link the new keys."""
        self._load_keys()
        assert self._keys is not None
        self.files[path] = meta
        self._set_stat(path, meta)
        self._keys.setdefault(path, array("q")).extend(new_keys)
        for row, h in zip(new_rows, new_keys):
            self._link_codex(h, path, row)
        self.total = None
        self.changed = True

    def _set_stat(self, path: str, meta: dict[str, Any]) -> None:
        days = meta.get("days") or [None, None]
        self.stat[path] = [meta["size"], meta["mtime"], meta["ino"], days[0], days[1]]
        self.skipped = -1

    def _link_claude(self, h: int, path: str, row: list) -> None:
        assert self._keymap is not None
        dup = self.dups.get(h)
        if dup is not None:
            dup[path] = row
            return
        other = self._keymap.get(h)
        if other is None or other == path:
            self._keymap[h] = path
            return
        other_row = self._claude_row_by_hash(other, h)
        if other_row is None:  # hash collision between different keys: treat as distinct
            return
        self.dups[h] = {other: other_row, path: row}

    def _claude_row_by_hash(self, path: str, h: int) -> list | None:
        for k, row in self.claude_rows(path)["rows"].items():
            if key_hash(k) == h:
                return row
        return None

    def _link_codex(self, h: int, path: str, row: list) -> None:
        assert self._keymap is not None
        dup = self.dups.get(h)
        if dup is not None:
            dup["files"].append(path)
            return
        other = self._keymap.get(h)
        if other is None or other == path:
            self._keymap[h] = path
            return
        self.dups[h] = {"row": row, "files": [other, path]}

    # ------------------------------------------------------------------ totals
    def totals(self) -> dict[str, list]:
        """``"day|model|vertex"`` -> [input, cache_read, cache_create, output, cost, unpriced_rows]."""
        if self.total is not None:
            return self.total
        tot: dict[str, list] = {}
        for meta in self.files.values():
            for k, v in meta["agg"].items():
                a = tot.get(k)
                if a is None:
                    tot[k] = a = _zero()
                _vec_add(a, v)
        for dup in self.dups.values():
            if self.kind == "claude":
                ranked = sorted(dup.items(), key=lambda pr: _claude_rank(pr[0], pr[1]))
                for _, row in ranked[1:]:
                    _vec_add(tot[claude_aggkey(row)], claude_vec(row), -1)
            else:
                n = len(dup["files"]) - 1
                if n > 0:
                    _vec_add(tot[codex_aggkey(dup["row"])], [n * x for x in codex_vec(dup["row"])], -1)
        for v in tot.values():
            v[4] = round(v[4], 10)
        self.total = {k: v for k, v in tot.items() if any(v[:4])}
        self.changed = True
        return self.total

    def skipped_lines(self) -> int:
        if self.skipped < 0:
            self.skipped = sum(m.get("skipped", 0) + m.get("tail_bad", 0) for m in self.files.values())
        return self.skipped


def aggregate_rows(rows: Iterable[list], aggkey, vec) -> dict[str, list]:
    agg: dict[str, list] = {}
    for row in rows:
        k = aggkey(row)
        a = agg.get(k)
        if a is None:
            agg[k] = a = _zero()
        _vec_add(a, vec(row))
    return agg


def aggregate_claude(rows: Iterable[list]) -> tuple[dict[str, list], list | None]:
    """``aggregate_rows(rows, claude_aggkey, claude_vec)`` and the rows' ``[first, last]`` day
    (``None`` without rows), in one pass; the sums are bit-identical (same additions, same order)."""
    agg: dict[str, list] = {}
    get = agg.get
    days = set()
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


def aggregate_codex(rows: Iterable[list]) -> tuple[dict[str, list], list | None]:
    """``aggregate_rows(rows, codex_aggkey, codex_vec)`` and the rows' ``[first, last]`` day."""
    agg: dict[str, list] = {}
    get = agg.get
    days = set()
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

