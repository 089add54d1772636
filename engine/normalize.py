"""Normalize stage: the spec's `usage` mapping + computed values -> a CodexBar usage snapshot (dict).

```yaml
usage:
  primary: {usedPercent: "percent(key_usage, key_limit)"}
  identity: {loginMethod: "'Balance: $' ~ fixed(max(0, total - spent))"}
```
A window whose `when` is false or whose `usedPercent` is none is absent (`null`).
"""
from __future__ import annotations

import math
from datetime import date, datetime, timezone
from typing import Any, Mapping

from .errors import EngineError
from .expr import compile_expr, compile_template, evaluate

WINDOW_FIELDS = ("usedPercent", "windowMinutes", "resetsAt", "resetDescription", "nextRegenPercent")
COST_FIELDS = ("used", "limit", "currencyCode", "period", "resetsAt", "nextRegenAmount", "personalUsed")
IDENTITY_FIELDS = ("accountEmail", "accountOrganization", "loginMethod")
DATE_FIELDS = ("subscriptionExpiresAt", "subscriptionRenewsAt")


def iso_z(value: datetime) -> str:
    """ISO-8601 UTC without fractional seconds: 2026-07-01T09:41:05Z."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def jsonable(value: Any) -> Any:
    """Dates -> ISO strings, integral floats -> ints, None-valued keys dropped (absent values are omitted)."""
    if isinstance(value, datetime):
        return iso_z(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        if not math.isfinite(value):
            raise EngineError("parse_failure", f"non-finite number {value!r} in the snapshot")
        return int(value) if value.is_integer() and abs(value) < 2**53 else value
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


class _Eval:
    def __init__(self, variables: dict[str, Any], trace: list[Any] | None) -> None:
        self.variables = variables
        self.trace = trace

    def __call__(self, source: Any, field: str) -> Any:
        if not isinstance(source, str):
            return source
        value = evaluate(compile_expr(source), self.variables, what=f"usage.{field}")
        if self.trace is not None:
            self.trace.append((field, source, value))
        return value


def _window(mapping: Mapping[str, Any] | None, ev: _Eval, field: str) -> dict[str, Any] | None:
    if not mapping:
        return None
    if "when" in mapping and not ev(mapping["when"], f"{field}.when"):
        return None
    used = ev(mapping["usedPercent"], f"{field}.usedPercent")
    if used is None:
        return None
    if isinstance(used, bool) or not isinstance(used, (int, float)):
        raise EngineError("parse_failure", f"usage.{field}.usedPercent: expected a number, got {used!r}")
    window: dict[str, Any] = {"usedPercent": float(used)}
    for key in WINDOW_FIELDS[1:]:
        if key in mapping:
            value = ev(mapping[key], f"{field}.{key}")
            if key == "windowMinutes" and value is not None:
                value = int(value)
            if key == "resetsAt" and value is not None and not isinstance(value, datetime):
                raise EngineError("parse_failure", f"usage.{field}.resetsAt: expected a date, got {value!r}")
            window[key] = value
    return window


def _label(source: str, variables: dict[str, Any], what: str) -> str:
    """An extra window's id or title: a template when it holds `{`, else the literal text."""
    return source if "{" not in source else str(evaluate(compile_template(source), variables, what=f"usage.{what}"))


def build_usage(usage: Mapping[str, Any], variables: dict[str, Any], *, provider: str, now: datetime,
                trace: list[Any] | None = None) -> dict[str, Any]:
    """The `usage` object of a provider payload (CONTRACT §1.3), JSON-ready."""
    ev = _Eval(variables, trace)
    out: dict[str, Any] = {}
    for lane in ("primary", "secondary", "tertiary"):
        out[lane] = _window(usage.get(lane), ev, lane)
    extras = []
    for i, named in enumerate(usage.get("extra_windows", [])):
        if "when" in named and not ev(named["when"], f"extra_windows[{i}].when"):
            continue
        window = _window(named, ev, f"extra_windows[{i}]")
        if window is None:
            continue
        # id and title are templates (plain text stays as is), e.g. "{{ top[0].name }}" for a dynamic list.
        item: dict[str, Any] = {"id": _label(named["id"], variables, f"extra_windows[{i}].id"),
                                "title": _label(named["title"], variables, f"extra_windows[{i}].title"),
                                "window": window}
        if named.get("usageKnown") is False:
            item["usageKnown"] = False
        extras.append(item)
    if extras:
        out["extraRateWindows"] = extras
    cost = usage.get("provider_cost")
    if cost and ("when" not in cost or ev(cost["when"], "provider_cost.when")):
        values = {k: ev(cost[k], f"provider_cost.{k}") for k in COST_FIELDS if k in cost}
        if values.get("used") is not None and values.get("limit") is not None:
            out["providerCost"] = {**values, "updatedAt": now}
    for key, source in usage.get("extensions", {}).items():
        value = ev(source, f"extensions.{key}")
        if value is not None:
            out[key] = value
    for key in DATE_FIELDS:
        if key in usage:
            out[key] = ev(usage[key], key)
    out["updatedAt"] = now
    if "updatedAt" in usage:  # the provider's own "as of" time; none -> the fetch time
        stamp = ev(usage["updatedAt"], "updatedAt")
        if stamp is not None and not isinstance(stamp, datetime):
            raise EngineError("parse_failure", f"usage.updatedAt: expected a date, got {stamp!r}")
        out["updatedAt"] = stamp or now
    identity: dict[str, Any] = {"providerID": provider}
    for key in IDENTITY_FIELDS:
        if key in usage.get("identity", {}):
            value = ev(usage["identity"][key], f"identity.{key}")
            if isinstance(value, str):
                value = value.strip() or None
            identity[key] = value
    out["identity"] = identity
    if "dataConfidence" in usage:
        confidence = ev(usage["dataConfidence"], "dataConfidence")
        if confidence != "unknown":
            out["dataConfidence"] = confidence
    for key in IDENTITY_FIELDS:
        out[key] = identity.get(key)
    snapshot = jsonable(out)
    # The three lanes are always present, `null` when absent (CONTRACT §1.3), and come first.
    lanes = {lane: snapshot.pop(lane, None) for lane in ("primary", "secondary", "tertiary")}
    return {**lanes, **snapshot}
