"""Claude (and Vertex AI) scan against a hand-made corpus with hand-computed totals."""
from __future__ import annotations

from datetime import timedelta, timezone

import pytest
from costlog_builders import NOW, LogHome, claude_line, claude_tool_output_with_fake_usage

from engine.cost import scan_cost

SONNET = "claude-sonnet-4-5-20250929"


def build(logs: LogHome) -> None:
    logs.write(".claude/projects/p/a.jsonl", [
        # one message streamed as three lines: input/cache identical, output grows -> last wins (120)
        claude_line(mid="msg_1", rid="req_1", inp=5, cr=100, cc=20, out=10, ts="2026-06-15T10:00:00.000Z"),
        claude_tool_output_with_fake_usage(),  # usage JSON inside tool output: must not count
        claude_line(mid="msg_1", rid="req_1", inp=5, cr=100, cc=20, out=50, ts="2026-06-15T10:00:01.000Z"),
        claude_line(mid="msg_1", rid="req_1", inp=5, cr=100, cc=20, out=120, ts="2026-06-15T10:00:02.000Z"),
        # API-error placeholder with all-zero usage: ignored
        claude_line(mid="msg_syn", rid=None, model="<synthetic>"),
        # malformed candidate line: skipped and counted
        '{"type":"assistant","message":{"usage":{"input_tokens":1,',
        # rows without requestId cannot be deduplicated: both count
        claude_line(mid="msg_u", rid=None, inp=1, out=7),
        claude_line(mid="msg_u", rid=None, inp=1, out=7),
        # previous local day, other model (dated name normalises to the priced base)
        claude_line(mid="msg_3", rid="req_3", model="claude-haiku-4-5-20251001", inp=2, cr=10, out=3,
                    ts="2026-06-14T23:30:00.000Z"),
        # the writer died mid-line: truncated last line (no newline), skipped and counted
        '{"parentUuid":null,"type":"assistant","message":{"usage":{"input_tokens":5',
    ], newline_at_end=False)
    # resumed session: re-copies the first two chunks of msg_1 (interrupted stream), then a new message
    logs.write(".claude/projects/p/b.jsonl", [
        claude_line(mid="msg_1", rid="req_1", inp=5, cr=100, cc=20, out=10),
        claude_line(mid="msg_1", rid="req_1", inp=5, cr=100, cc=20, out=50),
        claude_line(mid="msg_4", rid="req_4", inp=3, cr=200, cc=40, out=30),
    ])
    # subagent log repeats msg_4 as a sidechain row, plus its own message
    logs.write(".claude/projects/p/s1/subagents/agent-1.jsonl", [
        claude_line(mid="msg_4", rid="req_4", inp=3, cr=200, cc=40, out=30, sidechain=True),
        claude_line(mid="msg_5", rid="req_5", inp=4, out=6, sidechain=True),
    ])
    logs.write(".config/claude/projects/q/d.jsonl", [
        # Vertex AI: id marker and claude-…@version model; 1h cache writes billed at 2x input
        claude_line(mid="msg_vrtx_6", rid="req_vrtx_6", model="claude-opus-4-5@20251101",
                    inp=10, cr=1000, cc=100, cc1h=40, out=200),
        claude_line(mid="msg_7", rid="req_7", model="claude-mystery-9", inp=1, out=1),
        claude_line(mid="msg_8", rid="req_8", inp=100, out=100, ts="2026-04-01T10:00:00Z"),  # outside window
    ])
    logs.write(".claude/projects/p/.hidden.jsonl", [claude_line(mid="msg_9", rid="req_9", inp=1000, out=1000)])
    logs.write(".claude/projects/p/notes.txt", [claude_line(mid="msg_10", rid="req_10", inp=1000, out=1000)])


def scan(logs: LogHome, providers, **kw):
    kw.setdefault("tz", timezone.utc)
    return scan_cost(providers, days=30, home=logs.home, env={}, now=NOW, cache_dir=None, **kw)


def test_claude_payload_hand_computed(logs: LogHome) -> None:
    build(logs)
    (claude,) = scan(logs, ["claude"])
    sonnet_cost = (14 * 3 + 300 * 0.3 + 60 * 3.75 + 170 * 15) / 1e6   # 0.002907
    haiku_cost = (2 * 1 + 10 * 0.1 + 3 * 5) / 1e6                   # 0.000018
    assert claude["daily"] == [
        {"date": "2026-06-14", "inputTokens": 2, "outputTokens": 3, "cacheReadTokens": 10,
         "cacheCreationTokens": 0, "totalTokens": 15, "totalCost": pytest.approx(haiku_cost),
         "modelsUsed": ["claude-haiku-4-5"],
         "modelBreakdowns": [{"modelName": "claude-haiku-4-5", "cost": pytest.approx(haiku_cost), "totalTokens": 15}]},
        {"date": "2026-06-15", "inputTokens": 15, "outputTokens": 171, "cacheReadTokens": 300,
         "cacheCreationTokens": 60, "totalTokens": 546, "totalCost": pytest.approx(sonnet_cost),
         "modelsUsed": ["claude-mystery-9", "claude-sonnet-4-5"],
         "modelBreakdowns": [{"modelName": "claude-sonnet-4-5", "cost": pytest.approx(sonnet_cost), "totalTokens": 544},
                             {"modelName": "claude-mystery-9", "totalTokens": 2}]},
    ]
    assert claude["sessionTokens"] == 546
    assert claude["sessionCostUSD"] == pytest.approx(0.002907)
    assert claude["last30DaysTokens"] == 561
    assert claude["last30DaysCostUSD"] == pytest.approx(0.002925)
    assert claude["totals"] == {"inputTokens": 17, "outputTokens": 174, "cacheReadTokens": 310,
                                "cacheCreationTokens": 60, "totalTokens": 561,
                                "totalCost": pytest.approx(0.002925)}
    assert claude["diagnostics"] == {"skippedLines": 2, "unpricedModels": ["claude-mystery-9"]}
    assert claude["provider"] == "claude" and claude["source"] == "local" and claude["currencyCode"] == "USD"
    assert claude["historyDays"] == 30 and claude["updatedAt"] == "2026-06-15T18:00:00Z"
    assert "error" not in claude


def test_vertex_only_gets_vertex_rows(logs: LogHome) -> None:
    build(logs)
    (vertex,) = scan(logs, ["vertexai"])
    cost = (10 * 5 + 1000 * 0.5 + 60 * 6.25 + 40 * 10 + 200 * 25) / 1e6   # 0.006325
    assert vertex["daily"] == [
        {"date": "2026-06-15", "inputTokens": 10, "outputTokens": 200, "cacheReadTokens": 1000,
         "cacheCreationTokens": 100, "totalTokens": 1310, "totalCost": pytest.approx(cost),
         "modelsUsed": ["claude-opus-4-5"],
         "modelBreakdowns": [{"modelName": "claude-opus-4-5", "cost": pytest.approx(cost), "totalTokens": 1310}]}]
    assert vertex["sessionCostUSD"] == pytest.approx(0.006325)


def test_vertex_falls_back_to_all_claude_rows(logs: LogHome) -> None:
    logs.write(".claude/projects/p/a.jsonl", [claude_line(mid="m", rid="r", inp=1, out=2)])
    (vertex, claude) = scan(logs, ["vertexai", "claude"])
    assert vertex["totals"]["totalTokens"] == 3 == claude["totals"]["totalTokens"]


def test_vertex_metadata_marker(logs: LogHome) -> None:
    logs.write(".claude/projects/p/a.jsonl", [
        claude_line(mid="m1", rid="r1", inp=1, out=2, extra={"metadata": {"api_provider": "Google Vertex"}}),
        claude_line(mid="m2", rid="r2", inp=10, out=20),
    ])
    vertex, claude = scan(logs, ["vertexai", "claude"])
    assert vertex["totals"]["totalTokens"] == 3
    assert claude["totals"]["totalTokens"] == 30


def test_local_day_follows_timezone(logs: LogHome) -> None:
    logs.write(".claude/projects/p/a.jsonl", [
        claude_line(mid="m1", rid="r1", inp=1, out=1, ts="2026-06-14T20:00:00Z"),   # 05:00 on the 15th in UTC+9
        claude_line(mid="m2", rid="r2", inp=2, out=2, ts="2026-06-14T14:59:59Z"),   # 23:59:59 on the 14th
    ])
    (claude,) = scan(logs, ["claude"], tz=timezone(timedelta(hours=9)))
    assert [(d["date"], d["totalTokens"]) for d in claude["daily"]] == [("2026-06-14", 4), ("2026-06-15", 2)]
    assert claude["sessionTokens"] == 0   # NOW is 03:00 on the 16th in UTC+9


def test_claude_config_dir_env(logs: LogHome) -> None:
    logs.write("alt/projects/p/a.jsonl", [claude_line(mid="m1", rid="r1", inp=1, out=1)])
    logs.write("other/x/b.jsonl", [claude_line(mid="m2", rid="r2", inp=2, out=2)])
    logs.write("other/projects/c.jsonl", [claude_line(mid="m3", rid="r3", inp=4, out=4)])
    logs.write(".claude/projects/p/d.jsonl", [claude_line(mid="m4", rid="r4", inp=100, out=100)])
    env = {"CLAUDE_CONFIG_DIR": f" {logs.home / 'alt' / 'projects'} , {logs.home / 'other'} "}
    (claude,) = scan_cost(["claude"], days=30, home=logs.home, env=env, now=NOW, tz=timezone.utc, cache_dir=None)
    assert claude["totals"]["totalTokens"] == 2 + 8   # alt/projects + other/projects; defaults not used


def test_no_logs_gives_empty_payload(logs: LogHome) -> None:
    (claude,) = scan(logs, ["claude"])
    assert claude == {"provider": "claude", "source": "local", "updatedAt": "2026-06-15T18:00:00Z",
                      "currencyCode": "USD", "historyDays": 30, "daily": []}


def test_history_without_today_reports_zero_today(logs: LogHome) -> None:
    logs.write(".claude/projects/p/a.jsonl", [claude_line(mid="m1", rid="r1", inp=1, out=1,
                                                          ts="2026-06-10T10:00:00Z")])
    (claude,) = scan(logs, ["claude"])
    assert claude["sessionTokens"] == 0 and claude["sessionCostUSD"] == 0
    assert claude["last30DaysTokens"] == 2


def test_line_with_invalid_utf8_is_skipped_and_counted(logs: LogHome) -> None:
    """The typed decoder skips the message text without checking its UTF-8: a line whose text is
    not valid UTF-8 is not valid JSON, so it is skipped and counted, like any malformed line;
    the earlier chunk of the same message then stands."""
    good = claude_line(mid="m", rid="r", inp=1, out=2).encode()
    bad = claude_line(mid="m", rid="r", inp=1, out=9).replace('hello', 'h\udcffllo').encode("utf-8", "surrogateescape")
    assert b"h\xffllo" in bad
    path = logs.home / ".claude/projects/p/a.jsonl"
    path.parent.mkdir(parents=True)
    path.write_bytes(good + b"\n" + bad + b"\n")
    (claude,) = scan(logs, ["claude"])
    assert claude["totals"]["totalTokens"] == 3 and claude["diagnostics"] == {"skippedLines": 1}
