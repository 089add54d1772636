"""Claude Code session logs: roots, per-file parsing and the Vertex AI filter.

A usage row is one assistant message: ``message.usage`` of a line whose top-level
``type`` is ``assistant``.  Streaming writes one line per content block with the same
``message.id`` + ``requestId`` and a growing ``output_tokens``; within a file the last line
of a key wins.  Cross-file dedup (resumed sessions copy earlier lines) happens in the ledger.

Row layout (a list, so it pickles and serialises compactly)::

    [day, model, input, cache_read, cache_create, cache_create_1h, output, cost|None, sidechain, vertex]
"""
from __future__ import annotations

import itertools
import os
from datetime import tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Mapping, Optional

import msgspec

from . import pricing
from .jsonl import DECODE_ERRORS, ZULU_REST, Buffer, DayKeyer, as_int, read_blocks, valid_utf8

if TYPE_CHECKING:
    from .jsonl import Row
    from .pricing import ClaudeRates

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


def _line_has_vertex_metadata(raw: bytes | bytearray, obj: dict[str, Any] | None) -> bool:
    """The metadata part of CodexBar's Vertex AI tag for one line (``obj`` = it parsed, if at hand).

    An entry is Vertex AI's when its message id or request id holds ``_vrtx_``, its model is
    ``claude-…@version`` (both checked where rows are made), or -- this function -- any key at
    any depth names ``vertex``/``gcp``, or a provider-like key's value names ``vertex``.  The
    walk over the parsed line is skipped when neither ``vertex`` nor ``gcp`` occurs in it in any
    case: it cannot match then.
    """
    low = raw.lower()
    if low.find(b"vertex") < 0 and low.find(b"gcp") < 0:
        return False
    return _has_vertex_metadata(msgspec.json.decode(raw) if obj is None else obj)


# --------------------------------------------------------------------------- parsing

_Count = Annotated[int, msgspec.Meta(ge=0)]


class _CacheCreation(msgspec.Struct):
    ephemeral_1h_input_tokens: _Count = 0


class _Usage(msgspec.Struct):
    input_tokens: _Count = 0
    cache_creation_input_tokens: _Count = 0
    cache_read_input_tokens: _Count = 0
    output_tokens: _Count = 0
    cache_creation: Optional[_CacheCreation] = None


class _Message(msgspec.Struct):
    model: str
    usage: _Usage
    id: Optional[str] = None


class _Line(msgspec.Struct):
    """A usable Claude assistant line, strictly typed: the decoder reads only these fields and
    skips the rest of the line (message text, tool calls) without building objects for it.
    A line that does not fit -- a missing field, a float or negative count, a non-string id --
    fails to decode and is handled by the general path, which applies every lenient rule."""
    type: str
    timestamp: str
    message: _Message
    requestId: Optional[str] = None
    isSidechain: Optional[bool] = None


_decode_line = msgspec.json.Decoder(_Line).decode
_zulu_rest = ZULU_REST.fullmatch


class _ClaudeParse:
    __slots__ = ("keyer", "hours", "models", "rates", "rows", "unkeyed", "skipped")

    def __init__(self, tz: tzinfo):
        self.keyer = DayKeyer.for_tz(tz)
        self.hours = self.keyer.hours
        self.models: dict[str, str] = {}     # raw model -> normalised
        self.rates: dict[str, tuple[ClaudeRates | None, bool]] = {}  # normalised model -> (rates|None, needs timestamp)
        self.rows: dict[str, Row] = {}
        self.unkeyed: list[Row] = []
        self.skipped = 0

    def block(self, buf: Buffer, start: int, end: int) -> None:
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
            rec = _decode_line(raw)
        except DECODE_ERRORS:
            return self.line_general(raw)
        if rec.type != "assistant":
            return True
        if not raw.isascii() and not valid_utf8(raw):
            return self.line_general(raw)
        msg = rec.message
        u = msg.usage
        inp = u.input_tokens
        cc = u.cache_creation_input_tokens
        cr = u.cache_read_input_tokens
        out = u.output_tokens
        if not (inp or cc or cr or out):
            return True
        d = u.cache_creation
        cc1h = 0 if d is None else min(d.ephemeral_1h_input_tokens, cc)
        # what add() does, inline for the common case (this runs for every streamed chunk): a
        # Zulu timestamp whose UTC hour's day is known, a known model, no Vertex AI id or model
        ts = rec.timestamp
        day = self.hours.get(ts[:13])
        model = msg.model
        norm = self.models.get(model)
        mid = msg.id
        rid = rec.requestId
        if (day is None or norm is None or _zulu_rest(ts, 13) is None or mid is None or rid is None
                or "_vrtx_" in mid or "_vrtx_" in rid or (model.startswith("claude-") and "@" in model)):
            return self.add(raw, None, ts, model, inp, cc, cr, out, cc1h, rec.isSidechain is True, mid, rid)
        key = mid + ":" + rid
        rows = self.rows
        if key in rows:
            del rows[key]  # re-insert so dict order follows the last chunk
        rows[key] = [day, norm, inp, cr, cc, cc1h, out, ts, 1 if rec.isSidechain is True else 0, raw]
        return True

    def line_general(self, raw: bytes | bytearray) -> bool:
        """:meth:`line` for any JSON: parse it whole and check every field's type."""
        try:
            obj = msgspec.json.decode(raw)
        except DECODE_ERRORS:
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
        cc = as_int(uget("cache_creation_input_tokens"))
        detail = uget("cache_creation")
        cc1h = min(cc, as_int(detail.get("ephemeral_1h_input_tokens"))) if type(detail) is dict else 0
        side = get("isSidechain")
        return self.add(raw, obj, ts, model, as_int(uget("input_tokens")), cc,
                        as_int(uget("cache_read_input_tokens")), as_int(uget("output_tokens")), cc1h,
                        side is True or (type(side) in (int, float) and bool(side)), mget("id"), get("requestId"))

    def add(self, raw: bytes | bytearray, obj: dict[str, Any] | None, ts: str, model: str, inp: int, cc: int, cr: int,
            out: int, cc1h: int, side: bool, mid: Any, rid: Any) -> bool:
        """Count one assistant message: token counts already clamped (>= 0, ``cc1h <= cc``);
        ``obj`` = the parsed line, or None to parse it if needed.

        The row's cost slot holds the timestamp until :meth:`finish` prices the rows that won
        (about half of all lines are streamed chunks that a later chunk replaces).
        """
        if not (inp or cc or cr or out):
            return True
        # the local day: memoised per UTC hour for well-formed Zulu timestamps (DayKeyer.day)
        day = self.hours.get(ts[:13])
        if day is None or _zulu_rest(ts, 13) is None:
            day = self.keyer.day(ts)
            if day is None:
                self.skipped += 1
                return True
        norm = self.models.get(model)
        if norm is None:
            norm = self.models[model] = pricing.normalize_claude_model(model)
        # Vertex AI tag (see _line_has_vertex_metadata): the ids and the model are checked now; the
        # metadata search (of the whole line) is left to finish(), for the rows that won
        vertex: int | bytes | bytearray
        if ((type(mid) is str and "_vrtx_" in mid) or (type(rid) is str and "_vrtx_" in rid)
                or (model.startswith("claude-") and "@" in model)):
            vertex = 1
        elif obj is not None:
            vertex = 1 if _line_has_vertex_metadata(raw, obj) else 0
        else:
            vertex = raw
        row = [day, norm, inp, cr, cc, cc1h, out, ts, 1 if side else 0, vertex]
        if type(mid) is str and type(rid) is str:
            key = mid + ":" + rid
            rows = self.rows
            if key in rows:
                del rows[key]  # re-insert so dict order follows the last chunk
            rows[key] = row
        else:
            self.unkeyed.append(row)
        return True

    def finish(self) -> None:
        """Complete the rows that won: the Vertex AI tag of those whose line is still in the tag
        slot, and the price (the timestamp in the cost slot becomes the USD cost, None = unpriced)."""
        rates_of = self.rates
        parse = self.keyer.parse
        cost_with = pricing.claude_cost_with
        for row in itertools.chain(self.rows.values(), self.unkeyed):
            raw = row[R_VERTEX]
            if type(raw) is not int:  # the line (bytes, or a bytearray copy from the read path)
                row[R_VERTEX] = 1 if _line_has_vertex_metadata(raw, None) else 0
            norm = row[R_MODEL]
            r = rates_of.get(norm)
            if r is None:
                rates = pricing.claude_rates(norm)
                r = rates_of[norm] = (rates, bool(rates and rates[1]))
            rates, needs_ts = r
            if rates is None:
                row[R_COST] = None
                continue
            epoch = None
            if needs_ts:
                dt = parse(row[R_COST])
                epoch = dt.timestamp() if dt is not None else None
            row[R_COST] = cost_with(rates, row[R_IN], row[R_CR], row[R_CC], row[R_CC1H], row[R_OUT], epoch)


def parse_claude_file(path: str, offset: int, tz: tzinfo) -> dict[str, Any]:
    """Parse ``path`` from byte ``offset``.

    Returns ``{"rows": {key: row}, "unkeyed": [row], "skipped": n, "tail_bad": 0|1, "offset": n}``
    where ``offset`` is how far the file has been consumed (a truncated last line is not).
    """
    st = _ClaudeParse(tz)
    end, tail, sig = read_blocks(path, offset, MAX_LINE, st.block)
    tail_bad = 0
    if tail:
        if tail.find(MARK) >= 0 and tail.find(USAGE) >= 0:
            if st.line(tail):
                end += len(tail)
            else:
                st.skipped -= 1  # reported as tail_bad instead; it may still be completed
                tail_bad = 1
    st.finish()
    res = {"rows": st.rows, "unkeyed": st.unkeyed, "skipped": st.skipped, "tail_bad": tail_bad, "offset": end}
    if sig is not None:
        res["sig"] = sig
    return res
