"""Builders for small hand-made Claude/Codex log corpora inside tmp_path (never the real home)."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

NOW = datetime(2026, 6, 15, 18, 0, 0, tzinfo=timezone.utc)


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


def claude_line(*, mid: str | None, rid: str | None, model: str = "claude-sonnet-4-5-20250929",
                ts: str = "2026-06-15T10:00:00.000Z", inp: int = 0, cr: int = 0, cc: int = 0, out: int = 0,
                cc1h: int | None = None, sidechain: bool = False, extra: dict | None = None) -> str:
    usage: dict[str, Any] = {"input_tokens": inp, "cache_creation_input_tokens": cc, "cache_read_input_tokens": cr,
                             "output_tokens": out, "service_tier": "standard"}
    if cc1h is not None:
        usage["cache_creation"] = {"ephemeral_5m_input_tokens": cc - cc1h, "ephemeral_1h_input_tokens": cc1h}
    msg: dict[str, Any] = {"type": "message", "role": "assistant", "model": model,
                           "content": [{"type": "text", "text": "hello \"world\""}], "usage": usage}
    if mid is not None:
        msg["id"] = mid
    d: dict[str, Any] = {"parentUuid": None, "isSidechain": sidechain, "userType": "external", "cwd": "/w",
                         "sessionId": "s", "version": "2.0.37", "message": msg, "type": "assistant",
                         "uuid": "u", "timestamp": ts}
    if rid is not None:
        d["requestId"] = rid
    if extra:
        d.update(extra)
    return dumps(d)


def claude_tool_output_with_fake_usage(ts: str = "2026-06-15T10:00:05.000Z") -> str:
    fake = dumps({"type": "assistant", "message": {"id": "msg_fake", "model": "claude-opus-4-1-20250805",
                                                    "usage": {"input_tokens": 999999, "output_tokens": 999999}},
                  "requestId": "req_fake", "timestamp": "2026-06-15T10:00:00Z"})
    body = fake + "\n" + ("x" * 2000)
    return dumps({"type": "user", "message": {"role": "user", "content": [
        {"tool_use_id": "t1", "type": "tool_result", "content": body}]},
        "uuid": "v", "timestamp": ts, "toolUseResult": {"stdout": body, "stderr": ""}})


def codex_event(ts: str, typ: str, payload: dict[str, Any]) -> str:
    return dumps({"timestamp": ts, "type": typ, "payload": payload})


def codex_meta(ts: str, sid: str, **extra: Any) -> str:
    return codex_event(ts, "session_meta", {"id": sid, "timestamp": ts, "cwd": "/w", "originator": "codex_cli_rs",
                                            "cli_version": "0.58.0", "instructions": "be nice", **extra})


def codex_turn(ts: str, model: str) -> str:
    return codex_event(ts, "turn_context", {"cwd": "/w", "approval_policy": "on-request", "model": model,
                                            "summary": "auto"})


def usage(i: int, c: int, o: int) -> dict[str, int]:
    return {"input_tokens": i, "cached_input_tokens": c, "output_tokens": o, "reasoning_output_tokens": 0,
            "total_tokens": i + o}


def codex_tokens(ts: str, total: tuple[int, int, int] | None, last: tuple[int, int, int] | None) -> str:
    info: dict[str, Any] = {"model_context_window": 272000}
    if total is not None:
        info["total_token_usage"] = usage(*total)
    if last is not None:
        info["last_token_usage"] = usage(*last)
    return codex_event(ts, "event_msg", {"type": "token_count", "info": info, "rate_limits": {}})


def codex_tool_output_with_fake_usage(ts: str) -> str:
    fake = dumps({"timestamp": ts, "type": "event_msg", "payload": {"type": "token_count", "info": {
        "total_token_usage": usage(999999, 0, 999999), "last_token_usage": usage(999999, 0, 999999)}}})
    return codex_event(ts, "response_item", {"type": "function_call_output", "call_id": "c1",
                                             "output": dumps({"output": fake + "\n" + "y" * 3000})})


class LogHome:
    def __init__(self, root: Path):
        self.home = root / "home"
        self.home.mkdir()
        self.cache = root / "cache"

    def write(self, rel: str, lines: list[str], *, newline_at_end: bool = True) -> Path:
        p = self.home / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("\n".join(lines) + ("\n" if newline_at_end else ""), encoding="utf-8")
        return p

    def append(self, rel: str, lines: list[str]) -> Path:
        p = self.home / rel
        with p.open("a", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        return p


