"""Claude Code session logs: roots, per-file parsing and the Vertex AI filter.

A usage row is one assistant message: ``message.usage`` of a line whose top-level
``type`` is ``assistant``.  Streaming writes one line per content block with the same
``message.id`` + ``requestId`` and a growing ``output_tokens``; within a file the last line
of a key wins.  Cross-file dedup (resumed sessions copy earlier lines) happens in the ledger.

Row layout (a list, so it pickles and serialises compactly)::

    [day, model, input, cache_read, cache_create, cache_create_1h, output, cost|None, sidechain, vertex]
"""
from __future__ import annotations

import os
from datetime import tzinfo
from pathlib import Path
from typing import Any, Mapping

import orjson

from . import pricing
from .jsonl import DayKeyer, as_int, buffer_signature, read_blocks

MAX_LINE = 512 * 1024
MARK = b'"type":"assistant"'
USAGE = b'"usage"'

R_DAY, R_MODEL, R_IN, R_CR, R_CC, R_CC1H, R_OUT, R_COST, R_SIDE, R_VERTEX = range(10)

_VERTEX_PROVIDER_KEYS = frozenset({"provider", "platform", "backend", "api_provider", "apiprovider",
                                   "api_type", "apitype", "source", "vendor", "client"})


def claude_roots(home: Path, env: Mapping[str, str]) -> list[Path]:
    """``CLAUDE_CONFIG_DIR`` (comma-separated, each ``<p>/projects``) or the two default roots."""
    raw = (env.get("CLAUDE_CONFIG_DIR") or "").strip()
    roots: list[Path] = []
    if raw:
        for part in raw.split(","):
            part = part.strip()
            if not part:
                continue
            p = home / part[2:] if part == "~" or part.startswith("~/") else Path(part)
            roots.append(p if p.name == "projects" else p / "projects")
    else:
        roots = [home / ".config" / "claude" / "projects", home / ".claude" / "projects"]
    out: list[Path] = []
    for r in roots:
        if r not in out:
            out.append(r)
    return out


def list_claude_files(roots: list[Path]) -> dict[str, os.stat_result]:
    """Every non-empty ``*.jsonl`` below the roots (hidden files and folders skipped)."""
    found: dict[str, os.stat_result] = {}
    stack = [str(r) for r in roots]
    while stack:
        d = stack.pop()
        try:
            it = os.scandir(d)
        except OSError:
            continue
        with it:
            for e in it:
                if e.name.startswith("."):
                    continue
                try:
                    if e.is_dir(follow_symlinks=False):
                        stack.append(e.path)
                    elif e.name.lower().endswith(".jsonl"):
                        st = e.stat()
                        if st.st_size > 0:
                            found[e.path] = st
                except OSError:
                    continue
    return found


# --------------------------------------------------------------------------- vertex

def _has_vertex_metadata(obj: Any) -> bool:
    if isinstance(obj, dict):
        for key, value in obj.items():
            lk = key.lower()
            if "vertex" in lk or "gcp" in lk:
                return True
            if lk in _VERTEX_PROVIDER_KEYS and isinstance(value, str) and "vertex" in value.lower():
                return True
            if isinstance(value, (dict, list)) and _has_vertex_metadata(value):
                return True
    elif isinstance(obj, list):
        for item in obj:
            if isinstance(item, dict) and _has_vertex_metadata(item):
                return True
    return False


def is_vertex_entry(obj: dict, message: dict, raw: bytes | None = None) -> bool:
    """CodexBar's Vertex AI tag: ``_vrtx_`` ids, ``claude-…@version`` models, or Vertex/GCP metadata.

    ``raw`` (the line's bytes) lets the metadata walk be skipped when neither ``vertex`` nor
    ``gcp`` occurs anywhere in the line -- the walk cannot match then.
    """
    mid = message.get("id")
    if isinstance(mid, str) and "_vrtx_" in mid:
        return True
    rid = obj.get("requestId")
    if isinstance(rid, str) and "_vrtx_" in rid:
        return True
    model = message.get("model")
    if isinstance(model, str) and model.startswith("claude-") and "@" in model:
        return True
    if raw is not None:
        low = raw.lower()
        if low.find(b"vertex") < 0 and low.find(b"gcp") < 0:
            return False
    # `obj` is searched recursively, which already covers metadata/request/context/client
    # and message.metadata/message.request.
    return _has_vertex_metadata(obj)


# --------------------------------------------------------------------------- parsing

class _ClaudeParse:
    __slots__ = ("keyer", "models", "rows", "unkeyed", "skipped")

    def __init__(self, tz: tzinfo):
        self.keyer = DayKeyer.for_tz(tz)
        self.models: dict[str, tuple] = {}   # raw model -> (normalised, rates|None, needs timestamp)
        self.rows: dict[str, list] = {}
        self.unkeyed: list[list] = []
        self.skipped = 0

    def block(self, buf: bytearray, start: int, end: int) -> None:
        # Candidates are found with C-level searches over the whole block: the marker, then the
        # line around it; only lines that also hold "usage" are copied out and JSON-parsed.
        find = buf.find
        rfind = buf.rfind
        line = self.line
        i = find(MARK, start, end)
        while i >= 0:
            s = rfind(b"\n", start, i) + 1 or start
            e = find(b"\n", i, end)
            # "usage" sits near the end of real lines: search backwards
            if e - s <= MAX_LINE and rfind(USAGE, s, e) >= 0:
                line(buf[s:e])
            i = find(MARK, e + 1, end)

    def line(self, raw: bytes | bytearray) -> bool:
        """Handle one candidate line; False when it is not valid JSON."""
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            self.skipped += 1
            return False
        if type(obj) is not dict:
            return True
        get = obj.get
        if get("type") != "assistant":
            return True
        msg = get("message")
        ts = get("timestamp")
        if type(msg) is not dict or type(ts) is not str:
            self.skipped += 1
            return True
        mget = msg.get
        model = mget("model")
        usage = mget("usage")
        if type(model) is not str or type(usage) is not dict:
            self.skipped += 1
            return True
        uget = usage.get
        v = uget("input_tokens")
        inp = v if type(v) is int and v > 0 else as_int(v)
        v = uget("cache_creation_input_tokens")
        cc = v if type(v) is int and v > 0 else as_int(v)
        v = uget("cache_read_input_tokens")
        cr = v if type(v) is int and v > 0 else as_int(v)
        v = uget("output_tokens")
        out = v if type(v) is int and v > 0 else as_int(v)
        if not (inp or cc or cr or out):
            return True
        cc1h = 0
        detail = uget("cache_creation")
        if type(detail) is dict:
            cc1h = min(cc, as_int(detail.get("ephemeral_1h_input_tokens")))
        day = self.keyer.day(ts)
        if day is None:
            self.skipped += 1
            return True
        m = self.models.get(model)
        if m is None:
            norm = pricing.normalize_claude_model(model)
            rates = pricing.claude_rates(norm)
            m = self.models[model] = (norm, rates, bool(rates and rates[1]))
        norm, rates, needs_ts = m
        if rates is None:
            cost = None
        else:
            epoch = None
            if needs_ts:
                dt = self.keyer.parse(ts)
                epoch = dt.timestamp() if dt is not None else None
            cost = pricing.claude_cost_with(rates, inp, cr, cc, cc1h, out, epoch)
        side = get("isSidechain")
        mid = mget("id")
        rid = get("requestId")
        # Vertex AI tag (see is_vertex_entry), inlined
        if ((type(mid) is str and "_vrtx_" in mid) or (type(rid) is str and "_vrtx_" in rid)
                or (model.startswith("claude-") and "@" in model)):
            vertex = 1
        else:
            low = raw.lower()
            vertex = 1 if ((low.find(b"vertex") >= 0 or low.find(b"gcp") >= 0)
                           and _has_vertex_metadata(obj)) else 0
        row = [day, norm, inp, cr, cc, cc1h, out, cost,
               1 if (side is True or (type(side) in (int, float) and side)) else 0, vertex]
        if type(mid) is str and type(rid) is str:
            key = mid + ":" + rid
            rows = self.rows
            if key in rows:
                del rows[key]  # re-insert so dict order follows the last chunk
            rows[key] = row
        else:
            self.unkeyed.append(row)
        return True


def parse_claude_file(path: str, offset: int, tz: tzinfo) -> dict:
    """Parse ``path`` from byte ``offset``.

    Returns ``{"rows": {key: row}, "unkeyed": [row], "skipped": n, "tail_bad": 0|1, "offset": n}``
    where ``offset`` is how far the file has been consumed (a truncated last line is not).
    """
    st = _ClaudeParse(tz)
    end, tail, whole = read_blocks(path, offset, MAX_LINE, st.block)
    tail_bad = 0
    if tail:
        if tail.find(MARK) >= 0 and tail.find(USAGE) >= 0:
            if st.line(tail):
                end += len(tail)
            else:
                st.skipped -= 1  # reported as tail_bad instead; it may still be completed
                tail_bad = 1
    res = {"rows": st.rows, "unkeyed": st.unkeyed, "skipped": st.skipped, "tail_bad": tail_bad, "offset": end}
    if whole is not None:
        res["sig"] = buffer_signature(whole, end)
        whole.release()
    return res
