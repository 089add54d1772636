"""Codex CLI rollout logs: roots, file discovery and the per-file delta parser.

``event_msg``/``token_count`` events carry a cumulative ``info.total_token_usage`` and the
per-call ``info.last_token_usage``; the counted delta follows CodexBar (prefer the total's
difference when it is consistent with ``last``, so a re-emitted event with unchanged
totals counts 0).  The parser state is a plain dict so an appended file resumes exactly
where the previous scan stopped.

The lines read are token_count and task_started events, turn_context and session_meta lines.
A line in Codex's own layout (``{"timestamp":"<24 characters>","type":"…``) is read or not by
its own type, at its fixed place; any other line when it holds one of those types in compact
JSON anywhere (``"type":"token_count"``...).  So a tool output, message or reasoning line in
Codex's layout is never parsed, whatever text it carries.

Row layout: ``[turn_id, event_index, day, model, input, cached, output, cost|None]``.
"""
from __future__ import annotations

import os
import re
from datetime import date, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional

import msgspec

from . import pricing
from .jsonl import DECODE_ERRORS, ZULU_REST, Buffer, DayKeyer, as_int, read_blocks, valid_utf8

if TYPE_CHECKING:
    from .jsonl import Row
    from .pricing import CodexRates

MAX_LINE = 256 * 1024
LOOKBACK_DAYS = 30
_M_EVENT = b'"type":"event_msg"'
_M_TURN = b'"type":"turn_context"'
_M_META = b'"type":"session_meta"'
_M_ITEM = b'"type":"response_item"'
_HEAD = 160
# the lines the parser reads: their (top-level or payload) "type" in compact JSON, as Codex writes it
_CANDIDATE = re.compile(rb'"type":"(?:token_count|task_started|turn_context|session_meta)"')
_TOKEN_COUNT_LEN = len(b'"type":"token_count"')
# Codex's own line layout: {"timestamp":"<24 characters>","type":"<type>"… (serde writes the fields in
# that order): such a line is read or not by its own type, looked up at its fixed place
_TS = b'{"timestamp":"'
_TY = b'","type":"'
_TY_AT = len(_TS) + 24
_TYPE_AT = _TY_AT + len(_TY)
_TOKEN_HEAD = b'event_msg","payload":{"type":"token_count"'
_HEADS = (_TOKEN_HEAD, b'event_msg","payload":{"type":"task_started"', b'turn_context"', b'session_meta"')
_HEAD_BYTES = _TYPE_AT + len(_TOKEN_HEAD)
_NAME_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})")
_MODEL_RE = re.compile(rb'"model(?:_name)?":"((?:[^"\\]|\\.)*)"')

ROW_TURN, ROW_IDX, ROW_DAY, ROW_MODEL, ROW_IN, ROW_CACHED, ROW_OUT, ROW_COST = range(8)


# --------------------------------------------------------------------------- roots & listing

def codex_roots(home: Path, env: Mapping[str, str]) -> list[Path]:
    """``$CODEX_HOME/sessions`` (default ``~/.codex/sessions``) and its sibling ``archived_sessions``."""
    raw = (env.get("CODEX_HOME") or "").strip()
    if raw:
        base = home / raw[2:] if raw == "~" or raw.startswith("~/") else Path(raw)
        sessions = base / "sessions"
    else:
        sessions = home / ".codex" / "sessions"
    return [sessions, sessions.parent / "archived_sessions"]


def _subdirs(d: str, digits: int) -> list[str]:
    """Names of the subfolders of ``d`` that are exactly ``digits`` digits, sorted."""
    try:
        it = os.scandir(d)
    except OSError:
        return []
    with it:
        return sorted(e.name for e in it if len(e.name) == digits and e.name.isdigit() and e.name.isascii()
                      and e.is_dir())


def _date_dirs(root: str, since: str, until: str) -> list[tuple[str, str]]:
    """``(YYYY-MM-DD, folder)`` of the existing ``root/YYYY/MM/DD`` folders of real dates within
    ``[since, until]``, in date order (three levels of listing instead of a probe per day)."""
    out = []
    for y in _subdirs(root, 4):
        if not since[:4] <= y <= until[:4]:
            continue
        yd = os.path.join(root, y)
        for m in _subdirs(yd, 2):
            if not since[:7] <= f"{y}-{m}" <= until[:7]:
                continue
            md = os.path.join(yd, m)
            for d in _subdirs(md, 2):
                day = f"{y}-{m}-{d}"
                if since <= day <= until:
                    try:
                        date.fromisoformat(day)
                    except ValueError:
                        continue
                    out.append((day, os.path.join(md, d)))
    return out


def _jsonl_in(d: str, found: dict[str, os.stat_result], modified_since: float | None = None) -> None:
    try:
        it = os.scandir(d)
    except OSError:
        return
    with it:
        for e in it:
            if e.name.startswith(".") or not e.name.lower().endswith(".jsonl"):
                continue
            try:
                if not e.is_file():
                    continue
                st = e.stat()
            except OSError:
                continue
            if modified_since is None or st.st_mtime >= modified_since:
                found.setdefault(e.path, st)


def _walk(root: str, found: dict[str, os.stat_result], modified_since: float | None, skip_years: bool) -> None:
    stack = [root]
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
                        if not (skip_years and d == root and len(e.name) == 4 and e.name.isdigit()):
                            stack.append(e.path)
                    elif e.name.lower().endswith(".jsonl"):
                        st = e.stat()
                        if modified_since is None or st.st_mtime >= modified_since:
                            found.setdefault(e.path, st)
                except OSError:
                    continue


def list_codex_files(roots: list[Path], scan_since: str, scan_until: str, *, lookback_since: float | None,
                     full: bool) -> dict[str, os.stat_result]:
    """CodexBar's discovery: ``YYYY/MM/DD`` folders of the scan range, dated flat files in the
    range (undated always), and -- on a cold cache -- files modified since the window start in
    the 30 date folders before it and anywhere else; ``full`` adds a recursive listing."""
    found: dict[str, os.stat_result] = {}
    look_from = (date.fromisoformat(scan_since) - timedelta(days=LOOKBACK_DAYS)).isoformat()
    for root in roots:
        r = str(root)
        if not os.path.isdir(r):
            continue
        dated = _date_dirs(r, look_from if lookback_since is not None else scan_since, scan_until)
        for day, d in dated:
            if day >= scan_since:
                _jsonl_in(d, found)
        flat: dict[str, os.stat_result] = {}
        _jsonl_in(r, flat)
        for p, st in flat.items():
            m = _NAME_DATE.search(os.path.basename(p))
            if m is None or scan_since <= m.group(1) <= scan_until:
                found.setdefault(p, st)
        if lookback_since is not None:
            for day, d in dated:
                if day < scan_since:  # (the window's own folders are listed whole above)
                    _jsonl_in(d, found, lookback_since)
            _walk(r, found, lookback_since, skip_years=True)
        if full:
            _walk(r, found, None, skip_years=True)
    return found


# --------------------------------------------------------------------------- parser

def new_state() -> dict[str, Any]:
    return {"model": None, "prev": None, "raw": None, "div": False, "turn": None, "idx": 0,
            "sid": None, "fork": None, "fork_ts": None, "fork_done": False, "inh": None, "rem": None,
            "unres": False, "wm": None}


def _totals(d: Any) -> tuple[int, int, int] | None:
    if type(d) is not dict:
        return None
    g = d.get
    cached = g("cached_input_tokens")
    if cached is None:
        cached = g("cache_read_input_tokens")
    i = g("input_tokens")
    o = g("output_tokens")
    return (i if type(i) is int and i > 0 else as_int(i),
            cached if type(cached) is int and cached > 0 else as_int(cached),
            o if type(o) is int and o > 0 else as_int(o))


def _sub(a: tuple[int, int, int], b: tuple[int, int, int] | None) -> tuple[int, int, int]:
    if b is None:
        return a
    return (max(0, a[0] - b[0]), max(0, a[1] - b[1]), max(0, a[2] - b[2]))


def _add(a: tuple[int, int, int] | None, b: tuple[int, int, int]) -> tuple[int, int, int]:
    if a is None:
        return b
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2])


def _divergent(raw: tuple[int, int, int] | None, counted: tuple[int, int, int] | None,
               cur: tuple[int, int, int]) -> tuple[int, int, int]:
    raw = raw or (0, 0, 0)
    counted = counted or (0, 0, 0)
    # (three items: a zip of three triples)
    return tuple(max(0, c - r) if c >= r else max(0, c - k)  # type: ignore[return-value]
                 for r, k, c in zip(raw, counted, cur))


def _str(*vals: Any) -> str | None:
    for v in vals:
        if type(v) is str:
            return v
    return None


def _usage_totals(u: "_TokenUsage | None") -> tuple[int, int, int] | None:
    """:func:`_totals` of a typed-decoded usage object."""
    if u is None:
        return None
    cached = u.cached_input_tokens
    if cached is None:
        cached = u.cache_read_input_tokens
    i = u.input_tokens
    o = u.output_tokens
    return (i if type(i) is int and i > 0 else as_int(i),
            cached if type(cached) is int and cached > 0 else as_int(cached),
            o if type(o) is int and o > 0 else as_int(o))


class _TokenUsage(msgspec.Struct):
    input_tokens: Any = None
    cached_input_tokens: Any = None
    cache_read_input_tokens: Any = None
    output_tokens: Any = None


class _TokenInfo(msgspec.Struct):
    total_token_usage: Optional[_TokenUsage] = None
    last_token_usage: Optional[_TokenUsage] = None
    model: Any = None
    model_name: Any = None
    turn_id: Any = None
    turnId: Any = None
    id: Any = None


class _TokenPayload(msgspec.Struct):
    type: Any = None
    info: Optional[_TokenInfo] = None
    model: Any = None
    turn_id: Any = None
    turnId: Any = None
    id: Any = None


class _TokenLine(msgspec.Struct):
    """The fields of a token_count event the scan reads; the rest (rate limits) is skipped unbuilt."""
    type: Any = None
    timestamp: Any = None
    payload: Optional[_TokenPayload] = None
    model: Any = None


_decode_token_line = msgspec.json.Decoder(_TokenLine).decode
_zulu_rest = ZULU_REST.fullmatch


class NeedsFork(Exception):
    """The file is a fork; its parent's totals at the fork time must be resolved first."""

    def __init__(self, parent: str, fork_ts: str | None, sid: str | None):
        super().__init__(parent)
        self.parent, self.fork_ts, self.sid = parent, fork_ts, sid


class _CodexParse:
    def __init__(self, tz: tzinfo, state: dict[str, Any], forks_resolved: bool):
        self.keyer = DayKeyer.for_tz(tz)
        self.hours = self.keyer.hours
        self.models: dict[str, tuple[str, CodexRates | None]] = {}   # raw model -> (normalised, rates|None)
        #: called after every token_count event with its timestamp (parent_totals_at's snapshots)
        self.snap: Callable[[Any], None] | None = None
        self.s = state
        self.rows: list[Row] = []
        self.skipped = 0
        self.forks_resolved = forks_resolved
        for k in ("prev", "raw", "inh", "rem", "wm"):
            if state[k] is not None:
                state[k] = tuple(state[k])

    # -- byte level
    def block(self, buf: Buffer, start: int, end: int) -> None:
        # Only the lines that may matter are copied out and JSON-parsed, in file order: token_count
        # and task_started events, turn_context and session_meta lines.  A line in Codex's own
        # layout is picked by its type, read at its fixed place in the first bytes (so tool output,
        # reasoning and messages -- most of the bytes -- are skipped at the speed of memchr); any
        # other line by a search of the whole line for one of those types in compact JSON.
        find = buf.find
        search = _CANDIDATE.search
        line = self.line
        token_line = self.token_line
        s = start
        while s < end:
            e = find(b"\n", s, end)  # (a block is complete lines: there is one)
            head = buf[s:s + _HEAD_BYTES]
            if head.startswith(_TS) and head.startswith(_TY, _TY_AT):
                if not head.startswith(_HEADS, _TYPE_AT):
                    s = e + 1
                    continue
                token = head.startswith(_TOKEN_HEAD, _TYPE_AT)
            else:
                m = search(buf, s, e)
                if m is None:
                    s = e + 1
                    continue
                token = m.end() - m.start() == _TOKEN_COUNT_LEN
            if e - s > MAX_LINE:
                self.long(bytes(buf[s:s + MAX_LINE]))
            elif token:
                token_line(buf[s:e])
            else:
                line(buf[s:e])
            s = e + 1

    def long(self, prefix: bytes) -> None:
        """Over-long ``turn_context`` line: take the model from its prefix."""
        head = prefix[:_HEAD]
        if (head.find(_M_ITEM) >= 0 and head.find(_M_EVENT) < 0 and head.find(_M_TURN) < 0
                and head.find(_M_META) < 0):
            return  # a response_item (tool output) that merely mentions turn_context
        if prefix.find(_M_TURN) < 0:
            return
        m = _MODEL_RE.search(prefix)
        if m:
            try:
                self.s["model"] = msgspec.json.decode(b'"' + m.group(1) + b'"')
            except DECODE_ERRORS:
                pass

    def is_candidate(self, raw: bytes) -> bool:
        """Whether :meth:`block` would read this line (for the unterminated last one)."""
        if raw.startswith(_TS) and raw.startswith(_TY, _TY_AT):
            return raw.startswith(_HEADS, _TYPE_AT)
        return _CANDIDATE.search(raw) is not None

    # -- JSON level
    def line(self, raw: bytes | bytearray) -> bool:
        try:
            obj = msgspec.json.decode(raw)
        except DECODE_ERRORS:
            self.skipped += 1
            return False
        if type(obj) is not dict:
            return True
        t = obj.get("type")
        payload = obj.get("payload")
        if type(payload) is not dict:
            payload = {}
        s = self.s
        if t == "event_msg":
            pt = payload.get("type")
            if pt == "token_count":
                self.token_count(obj, payload)
                if self.snap is not None:
                    self.snap(obj.get("timestamp"))
            elif pt == "task_started":
                tid = _str(payload.get("turn_id"), payload.get("turnId"))
                if tid is not None:
                    s["turn"] = tid
        elif t == "turn_context":
            info = payload.get("info")
            info = info if type(info) is dict else {}
            model = _str(payload.get("model"), payload.get("model_name"), info.get("model"), info.get("model_name"))
            if model is not None:
                s["model"] = model
        elif t == "session_meta":
            if s["sid"] is None:
                s["sid"] = _str(payload.get("session_id"), payload.get("sessionId"), payload.get("id"),
                                obj.get("session_id"), obj.get("sessionId"), obj.get("id"))
            if s["fork"] is None:
                s["fork"] = _str(payload.get("forked_from_id"), payload.get("forkedFromId"),
                                 payload.get("parent_session_id"), payload.get("parentSessionId"))
                if s["fork"] is not None:
                    s["fork_ts"] = _str(payload.get("timestamp"), obj.get("timestamp"))
            if s["fork"] is not None and not s["fork_done"]:
                if not self.forks_resolved:
                    raise NeedsFork(s["fork"], s["fork_ts"], s["sid"])
                s["fork_done"] = True
        return True

    def token_line(self, raw: bytes | bytearray) -> bool:
        """:meth:`line` for a line holding ``"type":"token_count"``: the typed decoder reads only
        the fields a token count needs (not the rate limits); anything else goes to :meth:`line`."""
        try:
            rec = _decode_token_line(raw)
        except DECODE_ERRORS:
            return self.line(raw)
        p = rec.payload
        if rec.type != "event_msg" or p is None or p.type != "token_count":
            return self.line(raw)
        if not raw.isascii() and not valid_utf8(raw):
            return self.line(raw)
        ts = rec.timestamp
        info = p.info
        if info is not None and type(ts) is str:
            day = self.hours.get(ts[:13])
            if day is None or _zulu_rest(ts, 13) is None:
                day = self.keyer.day(ts)
            if day is None:
                self.skipped += 1
            else:
                turn = p.turn_id
                if type(turn) is not str:
                    turn = (None if p.turnId is None and p.id is None and info.turn_id is None
                            and info.turnId is None and info.id is None
                            else _str(p.turnId, p.id, info.turn_id, info.turnId, info.id))
                self.count(day, self.s["model"] or _str(info.model, info.model_name, p.model, rec.model) or "gpt-5",
                           _usage_totals(info.total_token_usage), _usage_totals(info.last_token_usage), turn)
        if self.snap is not None:
            self.snap(ts)
        return True

    def token_count(self, obj: dict[str, Any], payload: dict[str, Any]) -> None:
        info = payload.get("info")
        ts = obj.get("timestamp")
        if type(info) is not dict or type(ts) is not str:
            return
        day = self.keyer.day(ts)
        if day is None:
            self.skipped += 1
            return
        turn = payload.get("turn_id")
        if type(turn) is not str:
            turn = _str(payload.get("turnId"), payload.get("id"), info.get("turn_id"), info.get("turnId"),
                        info.get("id"))
        self.count(day, self.s["model"] or _str(info.get("model"), info.get("model_name"), payload.get("model"),
                                                obj.get("model")) or "gpt-5",
                   _totals(info.get("total_token_usage")), _totals(info.get("last_token_usage")), turn)

    def count(self, day: str, model: str, total: tuple[int, int, int] | None, last: tuple[int, int, int] | None,
              turn: str | None) -> None:
        """One token_count event: the counted delta (CodexBar's rules) becomes a row."""
        s = self.s
        raw = s["raw"]
        delta: tuple[int, int, int] | None
        if (total is not None and last is not None and raw is not None and s["rem"] is None
                and s["inh"] is None and s["fork"] is None and not s["div"] and not s["unres"]):
            # the common case, unrolled (same result as the `last is not None` branch below): an
            # unforked session whose counted totals still equal its raw totals
            t0, t1, t2 = total
            r0, r1, r2 = raw
            if (t0 >= r0 and t1 >= r1 and t2 >= r2
                    and t0 - r0 <= last[0] and t1 - r1 <= last[1] and t2 - r2 <= last[2]):
                delta = (t0 - r0, t1 - r1, t2 - r2)
            else:
                delta = last
            p0, p1, p2 = s["prev"] or (0, 0, 0)
            counted = (p0 + delta[0], p1 + delta[1], p2 + delta[2])
            s["prev"] = counted
            s["raw"] = total
            if total != counted:
                s["div"] = True
            if not (delta[0] or delta[1] or delta[2]):
                return
        else:
            delta = self.delta(total, last)
            if delta is None or not (delta[0] or delta[1] or delta[2]):
                return
        idx = s["idx"]
        s["idx"] = idx + 1
        m = self.models.get(model)
        if m is None:
            norm = pricing.normalize_codex_model(model)
            m = self.models[model] = (norm, pricing.codex_rates(norm))
        norm, rates = m
        self.rows.append([turn or s["turn"], idx, day, norm, delta[0], delta[1], delta[2],
                          None if rates is None else pricing.codex_cost_with(rates, delta[0], delta[1], delta[2])])

    def delta(self, total: tuple[int, int, int] | None,
              last: tuple[int, int, int] | None) -> tuple[int, int, int] | None:
        """The counted delta of one event, updating the running state (None: nothing counts)."""
        s = self.s
        forked = s["fork"] is not None
        inh = s["inh"]
        delta = None
        if s["unres"] and total is not None:
            wm = s["wm"]
            s["wm"] = total
            if last is None or wm is None:
                return None
            td = _sub(total, wm)
            delta = (min(last[0], td[0]), min(last[1], td[1]), min(last[2], td[2]))
            s["prev"] = _add(s["prev"], delta)
            s["raw"] = s["prev"]
        elif total is not None and forked:
            cur = _sub(total, inh)
            delta = _divergent(s["raw"], s["prev"], cur) if s["div"] else _sub(cur, s["raw"])
            s["prev"] = _add(s["prev"], delta)
            s["raw"] = cur
            if cur != s["prev"]:
                s["div"] = True
            s["rem"] = None
        elif last is not None:
            had_rem = s["rem"] is not None
            delta = last
            if had_rem:
                rem = s["rem"]
                delta = _sub(last, rem)
                rem = _sub(rem, last)
                s["rem"] = None if rem == (0, 0, 0) else rem
            prev = s["prev"] or (0, 0, 0)
            if total is not None and not s["unres"]:
                cur = _sub(total, inh)
                raw = s["raw"]
                td = _sub(cur, raw)
                if (not had_rem and not s["div"] and raw is not None
                        and cur[0] >= raw[0] and cur[1] >= raw[1] and cur[2] >= raw[2]
                        and td[0] <= last[0] and td[1] <= last[1] and td[2] <= last[2]):
                    delta = td
                    s["rem"] = None
                counted = _add(prev, delta)
                s["prev"] = counted
                s["raw"] = cur
                if cur != counted:
                    s["div"] = True
            else:
                s["prev"] = _add(prev, delta)
                s["raw"] = s["prev"]
        elif total is not None:
            cur = _sub(total, inh)
            delta = _divergent(s["raw"], s["prev"], cur) if s["div"] else _sub(cur, s["raw"])
            s["prev"] = _add(s["prev"], delta)
            s["raw"] = cur
            if cur != s["prev"]:
                s["div"] = True
            s["rem"] = None
        else:
            return None
        return delta


def parse_codex_file(path: str, offset: int, tz: tzinfo, state: dict[str, Any] | None,
                     forks_resolved: bool = False) -> dict[str, Any]:
    """Parse ``path`` from ``offset`` continuing ``state`` (``None`` = fresh file).

    Raises ``NeedsFork`` for a forked session whose parent baseline is not resolved yet
    (call again with ``forks_resolved=True`` and ``state`` prepared by ``fork_state``).
    """
    st = _CodexParse(tz, state if state is not None else new_state(), forks_resolved)
    end, tail, sig = read_blocks(path, offset, MAX_LINE, st.block, st.long)
    tail_bad = 0
    if tail and st.is_candidate(tail):
        if st.line(tail):
            end += len(tail)
        else:
            st.skipped -= 1
            tail_bad = 1
    res = {"rows": st.rows, "state": st.s, "skipped": st.skipped, "tail_bad": tail_bad, "offset": end}
    if sig is not None:
        res["sig"] = sig
    return res


# --------------------------------------------------------------------------- forks

def session_id_of(path: str) -> str | None:
    """Session id from the first ``session_meta`` line (reads at most the first 64 KiB of lines)."""
    try:
        with open(path, "rb") as f:
            for _ in range(50):
                line = f.readline(MAX_LINE + 1)
                if not line:
                    break
                if line.find(_M_META) < 0:
                    continue
                try:
                    obj = msgspec.json.decode(line)
                except DECODE_ERRORS:
                    continue
                p = obj.get("payload") if type(obj.get("payload")) is dict else {}
                return _str(p.get("session_id"), p.get("sessionId"), p.get("id"),
                            obj.get("session_id"), obj.get("sessionId"), obj.get("id"))
    except OSError:
        return None
    return None


def parent_totals_at(path: str, tz: tzinfo, cutoff: str) -> tuple[int, int, int] | None:
    """Counted cumulative totals of a (non-forked) parent session at or before ``cutoff``."""
    keyer = DayKeyer(tz)
    cut = keyer.parse(cutoff)
    snaps: list[tuple[str, tuple[int, int, int]]] = []
    st = _CodexParse(tz, new_state(), True)

    def record(ts: Any) -> None:
        if st.s["prev"] is not None and type(ts) is str:
            snaps.append((ts, st.s["prev"]))

    st.snap = record
    st.s["fork_done"] = True  # a parent's own fork is not re-resolved (CodexBar does the same)
    read_blocks(path, 0, MAX_LINE, st.block, st.long)
    inherited = None
    for ts, totals in snaps:
        when = keyer.parse(ts)
        if (when <= cut) if (when is not None and cut is not None) else (ts <= cutoff):
            inherited = totals
    return inherited


def fork_state(parent_totals: tuple[int, int, int] | None, resolved: bool) -> dict[str, Any]:
    """Initial parser state for a forked file."""
    s = new_state()
    s["fork_done"] = True
    if resolved:
        s["inh"] = parent_totals
        s["rem"] = parent_totals
    else:
        s["unres"] = True
    return s
