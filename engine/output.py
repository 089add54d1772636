"""Output stage: Outcome -> CodexBar-compatible payload (JSON) or text block (CONTRACT §1-2)."""
from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

from .errors import EngineError
from .load import Spec
from .normalize import iso_z
from .runner import Outcome

#: Error kind -> process exit code (CONTRACT §1.7.3). The one place this mapping lives.
EXIT_CODES = {"parse_failure": 3, "timeout": 4, "binary_missing": 2}


def exit_code(error: EngineError | None) -> int:
    if error is None:
        return 0
    return EXIT_CODES.get(error.kind, 1)


def payload(outcome: Outcome) -> dict[str, Any]:
    """One provider payload: `{provider, account?, source, usage}` or `{provider, account?, source, error}`."""
    out: dict[str, Any] = {"provider": outcome.provider}
    if outcome.account:
        out["account"] = outcome.account
    if outcome.error is None:
        out["source"] = outcome.source
        usage = outcome.usage or {}
        if outcome.account and not usage.get("accountEmail"):
            # CodexBar: with a token account and no e-mail from the provider, the label stands in (§1.4.3)
            identity = {**usage.get("identity", {}), "accountEmail": outcome.account}
            usage = {**usage, "identity": identity, "accountEmail": outcome.account}
        out["usage"] = usage
    else:
        out["source"] = outcome.mode
        out["error"] = {"code": exit_code(outcome.error), "message": outcome.error.message,
                        "kind": outcome.error.kind}
    return out


def dumps(value: Any, *, pretty: bool) -> str:
    """Compact JSON, or pretty (2-space, keys sorted at every level, `"key" : value` like Swift)."""
    if pretty:
        return json.dumps(value, indent=2, sort_keys=True, separators=(",", " : "), ensure_ascii=False)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def command_error(message: str, kind: str = "args", code: int = 1) -> list[dict[str, Any]]:
    """Command-level error payload (CONTRACT §1.7.2)."""
    return [{"provider": "cli", "source": "cli", "error": {"code": code, "message": message, "kind": kind}}]


# ----------------------------------------------------------------------------------------------- text

def _duration(seconds: float) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {mins}m" if mins else f"{hours}h"
    return f"{mins}m"


def reset_line(window: dict[str, Any], now: datetime, *, description_is_detail: bool = False) -> str | None:
    if "resetsAt" in window:
        reset = datetime.fromisoformat(window["resetsAt"].replace("Z", "+00:00"))
        seconds = (reset - now).total_seconds()
        return "Resets now" if seconds <= 0 else f"Resets in {_duration(seconds)}"
    desc = window.get("resetDescription")
    if desc and not description_is_detail:
        for prefix in ("Resets in ", "Resets "):
            if desc.startswith(prefix):
                desc = desc[len(prefix):]
                break
        return f"Resets {desc}"
    return None


def _bar(remaining: float) -> str:
    filled = int(math.floor(remaining / 100 * 12))
    return "[" + "=" * filled + "-" * (12 - filled) + "]"


def _left(used: float) -> tuple[str, float]:
    remaining = min(100.0, max(0.0, 100 - used))
    text = "<1%" if 0 < remaining < 1 else f"{remaining:.0f}%"
    return text, remaining


def text_block(outcome: Outcome, spec: Spec, now: datetime) -> tuple[str, str | None]:
    """(stdout block, stderr line) for one provider in CodexBar's text layout."""
    if outcome.error is not None:
        who = f"{spec.id} - {outcome.account}" if outcome.account else spec.id
        return "", f"Error ({who}): {outcome.error.message}"
    usage = outcome.usage or {}
    labels = spec.data.get("labels", {})
    detail = bool(spec.data.get("display", {}).get("description_is_detail"))
    lines = [f"== {spec.name} ({outcome.source}) =="]
    windows = [(labels.get(lane, default), usage.get(lane)) for lane, default in
               (("primary", "Session"), ("secondary", "Weekly"), ("tertiary", "Tertiary"))]
    windows += [(extra["title"], extra["window"]) for extra in usage.get("extraRateWindows", [])]
    for label, window in windows:
        if not window:
            continue
        text, remaining = _left(window["usedPercent"])
        lines.append(f"{label}: {text} left {_bar(remaining)}")
        reset = reset_line(window, now, description_is_detail=detail)
        if reset:
            lines.append(reset)
        if detail and window.get("resetDescription", "").strip():
            lines.append(window["resetDescription"].strip())
    cost = usage.get("providerCost")
    if cost and not usage.get("primary"):
        label = "Quota" if cost.get("currencyCode") == "Quota" else "Cost"
        lines.append(f"{label}: {cost['used']:.1f} / {cost['limit']:.1f}")
    if usage.get("accountEmail"):
        lines.append(f"Account: {usage['accountEmail']}")
    if usage.get("loginMethod"):
        lines.append(f"Plan: {usage['loginMethod']}")
    return "\n".join(lines), None


__all__ = ["payload", "dumps", "exit_code", "command_error", "text_block", "iso_z"]
