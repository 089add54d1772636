"""CodexBar ``cost`` payloads (CONTRACT §3), their JSON encoding and the text rendering."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import msgspec

DISPLAY = {"codex": "Codex", "claude": "Claude", "vertexai": "Vertex AI"}


def iso_z(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _filter(totals: dict[str, list[Any]], provider: str, since: str, until: str) -> dict[str, dict[str, list[Any]]]:
    """day -> model -> vec for the provider's rows inside the window."""
    def pick(vertex_rule: str | None) -> dict[str, dict[str, list[Any]]]:
        out: dict[str, dict[str, list[Any]]] = {}
        for key, vec in totals.items():
            day, model, vertex = key.rsplit("|", 2)
            if not (since <= day <= until):
                continue
            if vertex_rule == "exclude" and vertex == "1" or vertex_rule == "only" and vertex != "1":
                continue
            models = out.setdefault(day, {})
            acc = models.get(model)
            if acc is None:
                models[model] = list(vec)
            else:
                for i, v in enumerate(vec):
                    acc[i] += v
        return out

    if provider == "claude":
        return pick("exclude")
    if provider == "vertexai":
        return pick("only") or pick(None)  # no Vertex-tagged rows: CodexBar falls back to all
    return pick(None)


def _breakdown_order(b: dict[str, Any]) -> tuple[float, int, _Desc]:
    return (-(b.get("cost", -1)), -(b.get("totalTokens", -1)), _Desc(b["modelName"]))


class _Desc(str):
    def __lt__(self, other: str) -> bool:
        return str.__gt__(self, other)


def build_payload(provider: str, totals: dict[str, list[Any]], *, since: str, until: str, today: str, days: int,
                  now: datetime, skipped_lines: int = 0) -> dict[str, Any]:
    by_day = _filter(totals, provider, since, until)
    codex = provider == "codex"
    daily: list[dict[str, Any]] = []
    unpriced: set[str] = set()
    for day in sorted(by_day):
        models = by_day[day]
        d_in = d_cr = d_cc = d_out = 0
        d_cost = 0.0
        d_cost_seen = False
        breakdowns = []
        for model in sorted(models):
            inp, cr, cc, out, cost, n_unpriced = models[model]
            d_in += inp
            d_cr += cr
            d_cc += cc
            d_out += out
            tokens = inp + out if codex else inp + cr + cc + out
            b: dict[str, Any] = {"modelName": model, "totalTokens": tokens}
            if n_unpriced:
                unpriced.add(model)
            else:
                b["cost"] = cost
                d_cost += cost
                d_cost_seen = True
            breakdowns.append(b)
        breakdowns.sort(key=_breakdown_order)
        entry: dict[str, Any] = {"date": day, "inputTokens": d_in, "outputTokens": d_out}
        if codex:
            if d_cr:
                entry["cacheReadTokens"] = d_cr
            entry["totalTokens"] = d_in + d_out
        else:
            entry["cacheReadTokens"] = d_cr
            entry["cacheCreationTokens"] = d_cc
            entry["totalTokens"] = d_in + d_cr + d_cc + d_out
        if d_cost_seen:
            entry["totalCost"] = d_cost
        entry["modelsUsed"] = sorted(models)
        entry["modelBreakdowns"] = breakdowns
        daily.append(entry)

    payload: dict[str, Any] = {"provider": provider, "source": "local", "updatedAt": iso_z(now),
                               "currencyCode": "USD", "historyDays": days}
    if daily:
        today_entry = next((e for e in daily if e["date"] == today), None)
        payload["sessionTokens"] = today_entry["totalTokens"] if today_entry else 0
        if today_entry is None:
            payload["sessionCostUSD"] = 0
        elif "totalCost" in today_entry:
            payload["sessionCostUSD"] = today_entry["totalCost"]
        totals_obj: dict[str, Any] = {}
        for src, dst in (("inputTokens", "inputTokens"), ("outputTokens", "outputTokens"),
                         ("cacheReadTokens", "cacheReadTokens"), ("cacheCreationTokens", "cacheCreationTokens"),
                         ("totalTokens", "totalTokens"), ("totalCost", "totalCost")):
            vals = [e[src] for e in daily if src in e]
            if vals:
                totals_obj[dst] = sum(vals)
        payload["last30DaysTokens"] = totals_obj["totalTokens"]
        if "totalCost" in totals_obj:
            payload["last30DaysCostUSD"] = totals_obj["totalCost"]
        payload["totals"] = totals_obj
    payload["daily"] = daily
    diagnostics: dict[str, Any] = {}
    if skipped_lines:
        diagnostics["skippedLines"] = skipped_lines
    if unpriced:
        diagnostics["unpricedModels"] = sorted(unpriced)
    if diagnostics:
        payload["diagnostics"] = diagnostics
    return payload


def error_payload(provider: str, now: datetime, message: str, code: int = 1) -> dict[str, Any]:
    return {"provider": provider, "source": "local", "updatedAt": iso_z(now), "daily": [],
            "error": {"code": code, "message": message}}


# --------------------------------------------------------------------------- encoding

def _clean(value: Any, raw_floats: bool = False) -> Any:
    """Integral floats as ints; with ``raw_floats`` the other finite floats as their ``repr``
    (as :mod:`json` writes them: ``1e-07``, not msgspec's ``1e-7``), ready to be embedded as is.
    (One pass over a payload's few thousand values: leaves are handled inline, not by a call each.)"""
    def num(v: float) -> Any:
        if v.is_integer() and abs(v) < 2 ** 53:
            return int(v)
        if raw_floats and v - v == 0.0:  # (finite)
            return msgspec.Raw(float.__repr__(v).encode())
        return v

    def walk_dict(d: dict[Any, Any]) -> dict[Any, Any]:
        out = {}
        for k, v in d.items():
            t = type(v)
            if t is float:
                v = num(v)
            elif t is dict:
                v = walk_dict(v)
            elif t is list:
                v = walk_list(v)
            elif t is not str and t is not int and t is not bool and v is not None:
                v = walk(v)
            out[k] = v
        return out

    def walk_list(xs: list[Any]) -> list[Any]:
        return [x if type(x) is str or type(x) is int else walk(x) for x in xs]

    def walk(v: Any) -> Any:
        if isinstance(v, float):
            return num(v)
        if isinstance(v, dict):
            return walk_dict(v)
        if isinstance(v, list):
            return walk_list(v)
        return v

    return walk(value)


def dumps(value: Any, *, pretty: bool) -> str:
    """Compact JSON, or pretty (2-space indent, keys sorted at every level, Swift's ``"key" : value``);
    integral floats are written without ``.0``."""
    if pretty:
        import json

        return json.dumps(_clean(value), indent=2, sort_keys=True, separators=(",", " : "), ensure_ascii=False)
    # byte for byte what json.dumps(separators=(",", ":"), ensure_ascii=False) writes, in a
    # fraction of the time (floats are written by repr, as json does)
    return msgspec.json.encode(_clean(value, raw_floats=True)).decode()


# --------------------------------------------------------------------------- text

def tokens_text(n: int) -> str:
    """CodexBar's compact token count: ``950``, ``1.2K``, ``12K``, ``3.4M``, ``1.1B`` (one decimal below 10)."""
    n = int(n)
    sign = "-" if n < 0 else ""
    a = abs(n)
    for div, suffix in ((1_000_000_000, "B"), (1_000_000, "M"), (1_000, "K")):
        if a >= div:
            v = a / div
            if v >= 10:
                s = f"{v:.0f}"
            else:
                s = f"{v:.1f}"
                if s.endswith(".0"):
                    s = s[:-2]
            return f"{sign}{s}{suffix}"
    return str(n)


def usd_text(v: float) -> str:
    sign = "-" if v < 0 else ""
    return f"{sign}${abs(v):,.2f}"


_HINT = "Estimated from local logs · may differ from your bill"
HINTS = {
    "claude": "Estimated from local Claude logs at API rates; token totals include cache read/write tokens "
              "and may differ from Claude Code /status.",
}


def render_text(payload: dict[str, Any], *, color: bool = False) -> str:
    name = DISPLAY.get(payload["provider"], payload["provider"])
    header = f"{name} Cost (API-rate estimate)"
    if color:
        header = f"\x1b[1;36m{header}\x1b[0m"
    if "error" in payload:
        return f"{header}\nError: {payload['error']['message']}"
    cost = payload.get("sessionCostUSD")
    today = f"Today: {usd_text(cost) if cost is not None else '—'}"
    if "sessionTokens" in payload:
        today += f" · {tokens_text(payload['sessionTokens'])} tokens"
    days = payload["historyDays"]
    label = "Today" if days == 1 else f"Last {days} days"
    total_cost = payload.get("last30DaysCostUSD")
    window = f"{label}: {usd_text(total_cost) if total_cost is not None else '—'}"
    if "last30DaysTokens" in payload:
        window += f" · {tokens_text(payload['last30DaysTokens'])} tokens"
    lines = [header, today, window, HINTS.get(payload["provider"], _HINT)]
    diag = payload.get("diagnostics") or {}
    if diag.get("unpricedModels"):
        lines.append("Unpriced models (tokens counted, no cost): " + ", ".join(diag["unpricedModels"]))
    if diag.get("skippedLines"):
        lines.append(f"Skipped {diag['skippedLines']} malformed log line(s).")
    return "\n".join(lines)
