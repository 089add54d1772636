"""Expression functions: the small, pure helpers every spec expression and template can call.

Numbers and percents (percent, clamp, parse_number…), dates (epoch_s, iso, days, next_midnight…), text
(usd, fixed, window_text…) and tolerant lookups over response objects (first_key, lookup, find_objects…).
Each one is documented in docs/spec-reference.md, generated from these docstrings.
"""
from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Callable
from urllib.parse import urlsplit

from jinja2.sandbox import safe_range

from .errors import EngineError


def _num(x: Any) -> float | None:
    """Number from a number or numeric string (`"12.50"`, `"$1,234.50"`); None for None/blank."""
    if x is None or isinstance(x, bool):
        return None if x is None else float(x)
    if isinstance(x, (int, float)):
        return float(x)
    if isinstance(x, str):
        s = x.strip().replace(",", "").replace("$", "")
        if not s:
            return None
        try:
            return float(s)
        except ValueError:
            raise ValueError(f"not a number: {x!r}") from None
    raise ValueError(f"not a number: {x!r}")


def percent(used: Any, limit: Any) -> float | None:
    """used / limit × 100; None when either is missing or limit ≤ 0."""
    u, lim = _num(used), _num(limit)
    if u is None or lim is None or lim <= 0:
        return None
    return u / lim * 100


def used_from_remaining(remaining: Any, total: Any) -> float | None:
    """(total − remaining) / total × 100; None when total ≤ 0."""
    r, t = _num(remaining), _num(total)
    if r is None or t is None or t <= 0:
        return None
    return (t - r) / t * 100


def clamp(x: Any, lo: float = 0, hi: float = 100) -> float | None:
    """x limited to [lo, hi] (default 0..100); None stays None."""
    v = _num(x)
    return None if v is None else min(max(v, lo), hi)


def epoch_s(x: Any) -> datetime | None:
    """A UTC date from unix seconds (number or numeric string)."""
    v = _num(x)
    return None if v is None else datetime.fromtimestamp(v, timezone.utc)


def epoch_ms(x: Any) -> datetime | None:
    """A UTC date from unix milliseconds (number or numeric string)."""
    v = _num(x)
    return None if v is None else datetime.fromtimestamp(v / 1000, timezone.utc)


def iso(x: Any) -> datetime | None:
    """Parse an ISO-8601 date-time (fractional seconds and `Z` optional; naive means UTC)."""
    if x is None or x == "":
        return None
    if isinstance(x, datetime):
        return x
    s = str(x).strip().replace("Z", "+00:00").replace("z", "+00:00")
    dt = datetime.fromisoformat(s)
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def round_half_up(x: Any, ndigits: int = 0) -> float | None:
    """Half away from zero, like Swift's `.rounded()` (Python's round() is banker's rounding)."""
    from decimal import ROUND_HALF_UP, Decimal

    v = _num(x)
    if v is None:
        return None
    q = Decimal(1).scaleb(-ndigits)
    return float(Decimal(repr(v)).quantize(q, rounding=ROUND_HALF_UP))


def fixed(x: Any, ndigits: int = 2) -> str:
    """Plain `%.Nf` (no grouping): fixed(1234.5) -> '1234.50'."""
    v = _num(x)
    return f"{v if v is not None else 0:.{ndigits}f}"


def grouped(x: Any, ndigits: int = 0) -> str:
    """Comma-grouped number: grouped(42500) -> '42,500'."""
    v = _num(x)
    return f"{v if v is not None else 0:,.{ndigits}f}"


def usd(x: Any) -> str:
    """en_US currency: usd(1234) -> '$1,234.00', usd(-3) -> '-$3.00'."""
    v = _num(x) or 0.0
    return ("-" if v < 0 else "") + f"${abs(v):,.2f}"


def plain_number(x: Any, ndigits: int = 2) -> str:
    """Integer text when whole, else fixed: 12 -> '12', 12.5 -> '12.50'."""
    v = _num(x) or 0.0
    return str(int(v)) if v == int(v) else f"{v:.{ndigits}f}"


def first_of(*values: Any) -> Any:
    """First argument that is not None."""
    for v in values:
        if v is not None:
            return v
    return None


def number(x: Any) -> float | None:
    """A number from a number or numeric string (`"12.50"`, `"1,234"`, `"$5"`); blank -> None; other text fails
    the fetch as a parse_failure."""
    return _num(x)


def window_text(minutes: Any) -> str | None:
    """'5 hours window' style text for a window length in minutes (days > hours > minutes)."""
    m = _num(minutes)
    if m is None or m <= 0:
        return None
    for size, unit in ((1440, "day"), (60, "hour"), (1, "minute")):
        if m % size == 0:
            n = int(m // size)
            return f"{n} {unit}{'' if n == 1 else 's'} window"
    return None


def url_path_or(url: str | None, default_path: str) -> str | None:
    """`url` verbatim when it has a path other than `/`, else `url/default_path`."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.path in ("", "/"):
        return url.rstrip("/") + "/" + default_path.lstrip("/")
    return url


def url_host(value: Any) -> str | None:
    """The host (and `:port`) of a URL or bare host name, lower-cased, without leading/trailing dots (no scheme
    -> https://; path and user-info dropped): url_host('https://OctoCorp.ghe.com/login') -> 'octocorp.ghe.com'.
    Blank -> None."""
    if value is None:
        return None
    raw = str(value).strip()
    if not raw:
        return None
    try:
        parts = urlsplit(raw if "://" in raw else "https://" + raw)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:  # unparsable (bad port, broken IPv6 literal): the text up to the first `/` after the scheme
        host, port = raw.split("://", 1)[-1].split("/", 1)[0].rsplit("@", 1)[-1], None
    if port is not None:
        host += f":{port}"
    return host.strip(".").lower() or None


def sort_by(items: Any, key: str, reverse: bool = False) -> list[Any]:
    """Stable sort of objects by `key`; items whose key is None go last."""
    items = list(items or [])
    present = [i for i in items if i.get(key) is not None]
    missing = [i for i in items if i.get(key) is None]
    return sorted(present, key=lambda i: i[key], reverse=reverse) + missing


def title_words(s: Any) -> str | None:
    """'pro_plus' -> 'Pro Plus'."""
    if s is None:
        return None
    return " ".join(w[:1].upper() + w[1:].lower() for w in str(s).replace("_", " ").split())


_PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_PLAIN_INT = re.compile(r"[+-]?\d+")
_ISO_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})")


def parse_number(x: Any, money: bool = False) -> float | None:
    """Lenient number that never raises: a JSON number (true/false count as 1/0) or a plain decimal string
    (`" 12.5 "`, `"1e3"`); anything else is None. `money=True` also strips `$` and `,` (`"$1,234.50"` -> 1234.5)."""
    if isinstance(x, (bool, int, float)):
        v = float(x)
        return v if math.isfinite(v) else None
    if isinstance(x, str):
        s = x.strip()
        if money:
            s = s.replace("$", "").replace(",", "").strip()
        return float(s) if _PLAIN_NUMBER.fullmatch(s) else None
    return None


def fraction_percent(x: Any) -> float | None:
    """A percentage that may be sent as a fraction: values ≤ 1 are fractions (×100: 0.5 -> 50, exactly 1 -> 100),
    larger values are percents already. Non-numbers -> None."""
    v = parse_number(x)
    if v is None:
        return None
    return v * 100 if v <= 1 else v


def parse_date(x: Any) -> datetime | None:
    """A date from an ISO-8601 date-time with offset (`2026-07-01T12:00:00Z`, fractional seconds optional) or an
    epoch number/numeric string: > 1e12 is milliseconds, > 1e9 seconds, smaller numbers are not dates. Else None."""
    if isinstance(x, datetime):
        return x
    v = parse_number(x)
    if v is not None:
        if v > 1e12:
            return datetime.fromtimestamp(v / 1000, timezone.utc)
        if v > 1e9:
            return datetime.fromtimestamp(v, timezone.utc)
        return None
    if isinstance(x, str) and _ISO_DATETIME.fullmatch(x.strip()):
        try:
            return iso(x)
        except ValueError:
            return None
    return None


def parse_timestamp(x: Any) -> datetime | None:
    """A date from an epoch number or numeric string whose unit follows its size (> 1e14 microseconds, > 1e12
    milliseconds, else seconds; not positive -> None), or from an ISO-8601 date-time string (as parse_date).
    Anything else -> None."""
    if isinstance(x, datetime):
        return x
    v = parse_number(x)
    if v is not None and not isinstance(x, bool):
        if v <= 0:
            return None
        seconds = v / 1e6 if v > 1e14 else v / 1e3 if v > 1e12 else v
        try:
            return datetime.fromtimestamp(seconds, timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
    return parse_date(x) if isinstance(x, str) else None


#: Unit suffixes of duration_minutes (minutes per unit); the longest matching suffix wins.
_DURATION_UNITS = sorted(
    {"minutes": 1, "minute": 1, "mins": 1, "min": 1, "m": 1, "hours": 60, "hour": 60, "hrs": 60, "hr": 60,
     "h": 60, "days": 1440, "day": 1440, "d": 1440}.items(), key=lambda kv: -len(kv[0]))


def duration_minutes(text: Any) -> int | None:
    """Minutes of a "<number><unit>" duration text (`"5hr"` -> 300, `"30 min"` -> 30, `"1.5h"` -> 90, `"2 days"`);
    case and spaces ignored; units minutes/minute/mins/min/m, hours/hour/hrs/hr/h, days/day/d (longest suffix
    wins). Rounded half away from zero; a non-positive or unparsable number, or an unknown unit -> None."""
    if not isinstance(text, str):
        return None
    s = text.strip().lower().replace(" ", "")
    for suffix, minutes in _DURATION_UNITS:
        if s.endswith(suffix):
            v = parse_number(s[: -len(suffix)])
            if v is None or v <= 0:
                return None
            return int(round_half_up(v * minutes) or 0)
    return None


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|d|h|m|s)")
_DURATION_TEXT = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|d|h|m|s))+")
_DURATION_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_seconds(text: Any) -> float | None:
    """Seconds of a compound duration text made only of `<number><unit>` parts, units d, h, m, s, ms, summed
    (`"1m30s"` -> 90, `"2h"` -> 7200, `"250ms"` -> 0.25, `"1d 2h"` -> 93600); case and spaces ignored. Anything
    else (a bare number, an unknown unit) -> None."""
    if not isinstance(text, str):
        return None
    s = text.strip().lower().replace(" ", "")
    if not _DURATION_TEXT.fullmatch(s):
        return None
    return sum(float(n) * _DURATION_SECONDS[unit] for n, unit in _DURATION_PART.findall(s))


def _as_kind(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == "any":
        return value
    if kind == "number":
        return parse_number(value)
    if kind == "money":
        return parse_number(value, money=True)
    if kind == "amount":
        return parse_number(value.replace("%", "") if isinstance(value, str) else value, money=True)
    if kind == "integer":
        if isinstance(value, (bool, int, float)):
            return int(value) if math.isfinite(value) else None
        return int(value.strip()) if isinstance(value, str) and _PLAIN_INT.fullmatch(value.strip()) else None
    if kind == "string":
        return (value.strip() or None) if isinstance(value, str) else None
    if kind == "date":
        return parse_date(value)
    if kind == "object":
        return value if isinstance(value, dict) else None
    if kind == "array":
        return value if isinstance(value, list) else None
    raise ValueError(f"unknown kind {kind!r}")


def first_key(obj: Any, keys: Any, kind: str = "any") -> Any:
    """The value of the first of `keys` that `obj` holds as a `kind`, converted; None when none does (or `obj` is
    not an object). Kinds: any (not null), number (parse_number), money (parse_number with money=True), amount
    (money, also ignoring `%`), integer (numbers truncated, integer strings), string (trimmed, non-blank), date
    (parse_date), object, array.
    first_key(q, ['used', 'usage'], 'number')."""
    if not isinstance(obj, dict):
        return None
    if isinstance(keys, str):
        keys = [keys]
    for key in keys:
        value = _as_kind(obj.get(key), kind)
        if value is not None:
            return value
    return None


def find_objects(value: Any, keys: Any, kind: str = "any") -> list[dict[str, Any]]:
    """Every object inside `value` (depth first; arrays in order, object keys in sorted order) that holds one of
    `keys` as a `kind` (see first_key). A matching object is returned whole and not searched further."""
    found: list[dict[str, Any]] = []

    def walk(v: Any) -> None:
        if isinstance(v, list):
            for item in v:
                walk(item)
        elif isinstance(v, dict):
            if first_key(v, keys, kind) is not None:
                found.append(v)
            else:
                for k in sorted(v):
                    walk(v[k])

    walk(value)
    return found


def _loose(key: str) -> str:
    return "".join(c for c in key.lower() if c.isalnum())


def lookup(obj: Any, keys: Any, kind: str = "any") -> Any:
    """The value under the first of `keys` that object `obj` has, keys compared loosely (case and everything but
    letters and digits ignored: `reset_at` = `resetAt` = `Reset-At`), converted to `kind` (see first_key). The
    first key present wins even when its value is null or does not convert (then None; later keys are not
    tried). None when `obj` is not an object or has none of the keys. lookup(q, ['reset_at', 'period_end'])."""
    if not isinstance(obj, dict):
        return None
    if isinstance(keys, str):
        keys = [keys]
    loose: dict[str, Any] = {}
    for key, value in obj.items():
        loose.setdefault(_loose(str(key)), value)
    for key in keys:
        wanted = _loose(key)
        if wanted in loose:
            return _as_kind(loose[wanted], kind)
    return None


def all_objects(value: Any) -> list[dict[str, Any]]:
    """Every object inside `value`, itself included: depth first, each object before the objects nested in it
    (its values in document order, arrays in order). all_objects({'a': {'b': {}}}) -> [outer, {'b': {}}, {}]."""
    found: list[dict[str, Any]] = []

    def walk(v: Any) -> None:
        if isinstance(v, list):
            for item in v:
                walk(item)
        elif isinstance(v, dict):
            found.append(v)
            for item in v.values():
                walk(item)

    walk(value)
    return found


def split_number(text: Any) -> dict[str, Any] | None:
    """The number a text starts with and the text after it: split_number('4.5hours') -> {'number': 4.5,
    'rest': 'hours'}; None when `text` is not a text starting with a number (no leading spaces allowed)."""
    if not isinstance(text, str):
        return None
    match = _PLAIN_NUMBER.match(text)
    if not match:
        return None
    return {"number": float(match.group(0)), "rest": text[match.end():]}


def int_range(*args: int) -> list[int]:
    """Integers like Python's range, as a list: range(3) -> [0, 1, 2], range(1, 7, 2) -> [1, 3, 5] (at most
    100,000 items). Handy to walk several lists by index: for_each: range(len(defs))."""
    return list(safe_range(*args))


def require(value: Any, message: str, kind: str = "parse_failure") -> Any:
    """`value` itself when it is present (not None, not an empty list/object/string); otherwise the fetch fails
    with error `kind` (default parse_failure) and `message`."""
    if value is None or (isinstance(value, (list, dict, str)) and not value):
        raise EngineError(kind, message)
    return value


def days(n: Any) -> timedelta:
    """A duration of `n` days, for date arithmetic: `now - days(30)`."""
    return timedelta(days=float(n))


def utc_midnight(dt: datetime) -> datetime:
    """Start of `dt`'s UTC day."""
    dt = dt.astimezone(timezone.utc)
    return datetime(dt.year, dt.month, dt.day, tzinfo=timezone.utc)


def epoch(dt: datetime | None) -> int | None:
    """Unix seconds of a date (int)."""
    return None if dt is None else int(dt.timestamp())


def strftime(dt: datetime | None, fmt: str, tz_name: str | None = None) -> str | None:
    """Format a date (`'%Y-%m-%d'`), in UTC or in the IANA zone `tz_name`."""
    if dt is None:
        return None
    if tz_name:
        from zoneinfo import ZoneInfo

        dt = dt.astimezone(ZoneInfo(tz_name))
    else:
        dt = dt.astimezone(timezone.utc)
    return dt.strftime(fmt)


def date_chunks(start: datetime, total_days: int, chunk_days: int) -> list[dict[str, Any]]:
    """Consecutive ranges covering `total_days` from `start`, each at most `chunk_days` long:
    `[{'start': datetime, 'end': datetime, 'days': n}, ...]` (for APIs that cap a query's range)."""
    out = []
    done = 0
    while done < int(total_days):
        n = min(int(chunk_days), int(total_days) - done)
        begin = start + timedelta(days=done)
        out.append({"start": begin, "end": begin + timedelta(days=n), "days": n})
        done += n
    return out


def each_with(items: Any, fields: Any) -> list[dict[str, Any]]:
    """Copies of the objects in `items`, each updated with the object `fields` (e.g. a parent's date on each of
    its children: `each_with(bucket.results, {'day': bucket.start_time})`). A non-object item fails the fetch."""
    if not isinstance(fields, dict):
        raise ValueError("each_with: fields must be an object")
    out = []
    for item in items or []:
        if not isinstance(item, dict):
            raise ValueError(f"each_with: expected objects, got {type(item).__name__}")
        out.append({**item, **fields})
    return out


def group_sum(items: Any, keys: Any, fields: Any) -> list[dict[str, Any]]:
    """One object per distinct combination of `keys` (first-seen order) holding those keys and each of `fields`
    summed over the group (missing/None counts as 0): group_sum(rows, ['name'], ['cost', 'requests'])."""
    keys = [keys] if isinstance(keys, str) else list(keys)
    fields = [fields] if isinstance(fields, str) else list(fields)
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    for item in items or []:
        if not isinstance(item, dict):
            raise ValueError(f"group_sum: expected objects, got {type(item).__name__}")
        ident = tuple(item.get(k) for k in keys)
        group = groups.get(ident)
        if group is None:
            group = groups[ident] = {**dict(zip(keys, ident)), **{f: 0 for f in fields}}
        for f in fields:
            value = item.get(f)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"group_sum: {f} is not a number: {value!r}")
            group[f] += value
    return list(groups.values())


class _Helpers:
    """Functions bound to the run's clock and time zone."""

    def __init__(self, now: datetime, tz: Any = timezone.utc) -> None:
        self.now = now
        self.tz = tz

    def next_midnight(self, tz_name: str) -> datetime:
        """Next local midnight strictly after now in the IANA zone `tz_name`, as UTC."""
        from zoneinfo import ZoneInfo

        zone = ZoneInfo(tz_name)
        local = self.now.astimezone(zone)
        day = (local + timedelta(days=1)).date()
        midnight = datetime(day.year, day.month, day.day, tzinfo=zone)
        return midnight.astimezone(timezone.utc)

    def local_now(self) -> datetime:
        """Now in the run's local time zone (the machine's, or the cassette's `tz`)."""
        return self.now.astimezone(self.tz)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "percent": percent,
    "used_from_remaining": used_from_remaining,
    "clamp": clamp,
    "epoch_s": epoch_s,
    "epoch_ms": epoch_ms,
    "iso": iso,
    "round_half_up": round_half_up,
    "fixed": fixed,
    "grouped": grouped,
    "usd": usd,
    "plain_number": plain_number,
    "first_of": first_of,
    "number": number,
    "window_text": window_text,
    "url_path_or": url_path_or,
    "url_host": url_host,
    "sort_by": sort_by,
    "title_words": title_words,
    "days": days,
    "utc_midnight": utc_midnight,
    "epoch": epoch,
    "strftime": strftime,
    "date_chunks": date_chunks,
    "parse_number": parse_number,
    "fraction_percent": fraction_percent,
    "parse_date": parse_date,
    "duration_minutes": duration_minutes,
    "duration_seconds": duration_seconds,
    "parse_timestamp": parse_timestamp,
    "first_key": first_key,
    "find_objects": find_objects,
    "require": require,
    "lookup": lookup,
    "all_objects": all_objects,
    "split_number": split_number,
    "range": int_range,
    "each_with": each_with,
    "group_sum": group_sum,
    "floor": math.floor,
    "ceil": math.ceil,
    "max": max,
    "min": min,
    "abs": abs,
    "len": len,
}
#: Functions that need the run's clock; bound per run.
CLOCK_FUNCTIONS = ("next_midnight", "local_now")
GLOBAL_NAMES = frozenset(FUNCTIONS) | frozenset(CLOCK_FUNCTIONS) | {"now", "none", "true", "false"}
