"""Codex scan against a hand-made corpus with hand-computed totals."""
from __future__ import annotations

import shutil
from datetime import timezone

import pytest
from costlog_builders import (NOW, LogHome, codex_event, codex_meta, codex_tokens, codex_tool_output_with_fake_usage,
                              codex_turn)

from engine.cost import scan_cost

S1 = ".codex/sessions/2026/06/15/rollout-2026-06-15T09-00-00-sid1.jsonl"


def build(logs: LogHome) -> None:
    logs.write(S1, [
        codex_meta("2026-06-15T09:00:00.000Z", "sid1"),
        codex_turn("2026-06-15T09:00:00.000Z", "gpt-5"),
        codex_event("2026-06-15T09:00:01.000Z", "event_msg", {"type": "token_count", "info": None}),
        codex_tokens("2026-06-15T09:10:00.000Z", (100, 20, 10), (100, 20, 10)),
        codex_tool_output_with_fake_usage("2026-06-15T09:15:00.000Z"),           # must not count
        codex_tokens("2026-06-15T09:20:00.000Z", (100, 20, 10), (100, 20, 10)),   # re-emitted: delta 0
        codex_turn("2026-06-15T09:59:00.000Z", "gpt-5.1-codex-mini"),
        codex_tokens("2026-06-15T10:00:00.000Z", (250, 70, 30), (150, 50, 20)),
        '{"timestamp":"2026-06-15T10:01:00Z","type":"event_msg","payload":{"type":"token_count","info":{',
        codex_tokens("2026-06-15T23:59:59+02:00", (300, 70, 35), (50, 0, 5)),     # 21:59:59Z
    ])
    # the same session archived as well: counted once
    archived = logs.home / ".codex/archived_sessions/rollout-2026-06-15T09-00-00-sid1.jsonl"
    archived.parent.mkdir(parents=True)
    shutil.copy(logs.home / S1, archived)
    # last_token_usage only; model from info.model (provider prefix stripped)
    logs.write(".codex/sessions/2026/06/14/rollout-2026-06-14T08-00-00-sid2.jsonl", [
        codex_meta("2026-06-14T08:00:00Z", "sid2"),
        codex_event("2026-06-14T08:01:00Z", "event_msg", {"type": "token_count", "info": {
            "model": "openai/gpt-5.2-codex", "last_token_usage": {"input_tokens": 1000, "cached_input_tokens": 800,
                                                                  "output_tokens": 100}}}),
        codex_event("2026-06-14T08:02:00Z", "event_msg", {"type": "token_count", "info": {
            "model": "openai/gpt-5.2-codex", "last_token_usage": {"input_tokens": 500, "cached_input_tokens": 0,
                                                                  "output_tokens": 50}}}),
    ])
    # fork of sid1 at 10:30: its totals include the parent's (250, 70, 30) at that time
    logs.write(".codex/sessions/2026/06/15/rollout-2026-06-15T12-00-00-sid3.jsonl", [
        codex_meta("2026-06-15T12:00:00Z", "sid3", forked_from_id="sid1", timestamp="2026-06-15T10:30:00Z"),
        codex_turn("2026-06-15T12:00:00Z", "gpt-5"),
        codex_tokens("2026-06-15T12:01:00Z", (290, 80, 34), (40, 10, 4)),
        codex_tokens("2026-06-15T12:02:00Z", (300, 80, 40), (10, 0, 6)),
    ])
    logs.write(".codex/sessions/2026/06/15/rollout-2026-06-15T13-00-00-sid4.jsonl", [
        codex_meta("2026-06-15T13:00:00Z", "sid4"),
        codex_turn("2026-06-15T13:00:00Z", "gpt-9-turbo"),
        codex_tokens("2026-06-15T13:01:00Z", (10, 0, 1), (10, 0, 1)),
    ])
    # outside the window's date folders and too old to matter
    logs.write(".codex/sessions/2026/01/02/rollout-2026-01-02T08-00-00-sid5.jsonl", [
        codex_meta("2026-01-02T08:00:00Z", "sid5"),
        codex_tokens("2026-01-02T08:01:00Z", (5000, 0, 5000), (5000, 0, 5000)),
    ])


def test_codex_payload_hand_computed(logs: LogHome) -> None:
    build(logs)
    (codex,) = scan_cost(["codex"], days=30, home=logs.home, env={}, now=NOW, tz=timezone.utc, cache_dir=None)
    c52 = (700 * 1.75 + 800 * 0.175 + 150 * 14) / 1e6        # 0.003465
    c5 = (120 * 1.25 + 30 * 0.125 + 20 * 10) / 1e6           # 0.00035375
    cmini = (150 * 0.25 + 50 * 0.025 + 25 * 2) / 1e6         # 0.00008875
    assert codex["daily"] == [
        {"date": "2026-06-14", "inputTokens": 1500, "outputTokens": 150, "cacheReadTokens": 800,
         "totalTokens": 1650, "totalCost": pytest.approx(c52), "modelsUsed": ["gpt-5.2-codex"],
         "modelBreakdowns": [{"modelName": "gpt-5.2-codex", "cost": pytest.approx(c52), "totalTokens": 1650}]},
        {"date": "2026-06-15", "inputTokens": 360, "outputTokens": 46, "cacheReadTokens": 80,
         "totalTokens": 406, "totalCost": pytest.approx(c5 + cmini),
         "modelsUsed": ["gpt-5", "gpt-5.1-codex-mini", "gpt-9-turbo"],
         "modelBreakdowns": [{"modelName": "gpt-5", "cost": pytest.approx(c5), "totalTokens": 170},
                             {"modelName": "gpt-5.1-codex-mini", "cost": pytest.approx(cmini), "totalTokens": 225},
                             {"modelName": "gpt-9-turbo", "totalTokens": 11}]},
    ]
    assert codex["totals"] == {"inputTokens": 1860, "outputTokens": 196, "cacheReadTokens": 880,
                               "totalTokens": 2056, "totalCost": pytest.approx(0.0039075)}
    assert codex["sessionTokens"] == 406
    assert codex["sessionCostUSD"] == pytest.approx(0.0004425)
    assert codex["last30DaysTokens"] == 2056
    # one malformed token_count line in the session file and one in its archived copy
    assert codex["diagnostics"] == {"skippedLines": 2, "unpricedModels": ["gpt-9-turbo"]}


def test_codex_home_env_and_refresh_finds_everything(logs: LogHome) -> None:
    logs.write("ch/sessions/2026/06/15/rollout-2026-06-15T09-00-00-a.jsonl", [
        codex_meta("2026-06-15T09:00:00Z", "a"), codex_turn("2026-06-15T09:00:00Z", "gpt-5"),
        codex_tokens("2026-06-15T09:01:00Z", (10, 0, 5), (10, 0, 5))])
    # a legacy file outside the date folders, not dated in its name, old mtime: only a forced rescan lists it
    p = logs.write("ch/sessions/legacy/old.jsonl", [
        codex_meta("2026-06-15T09:00:00Z", "b"), codex_turn("2026-06-15T09:00:00Z", "gpt-5"),
        codex_tokens("2026-06-15T09:01:00Z", (100, 0, 50), (100, 0, 50))])
    import os
    os.utime(p, (1_600_000_000, 1_600_000_000))
    env = {"CODEX_HOME": str(logs.home / "ch")}
    kw = dict(days=7, home=logs.home, env=env, now=NOW, tz=timezone.utc)
    (codex,) = scan_cost(["codex"], cache_dir=logs.cache, **kw)
    assert codex["totals"]["totalTokens"] == 15
    (codex,) = scan_cost(["codex"], cache_dir=logs.cache, refresh=True, **kw)
    assert codex["totals"]["totalTokens"] == 165


def test_unresolved_fork_counts_only_growth(logs: LogHome) -> None:
    logs.write(".codex/sessions/2026/06/15/rollout-2026-06-15T12-00-00-c.jsonl", [
        codex_meta("2026-06-15T12:00:00Z", "c", forked_from_id="missing-parent", timestamp="2026-06-15T11:00:00Z"),
        codex_turn("2026-06-15T12:00:00Z", "gpt-5"),
        codex_tokens("2026-06-15T12:01:00Z", (5000, 0, 500), (40, 0, 4)),    # watermark only
        codex_tokens("2026-06-15T12:02:00Z", (5010, 0, 506), (10, 0, 6)),    # min(last, growth) = (10, 0, 6)
    ])
    (codex,) = scan_cost(["codex"], days=30, home=logs.home, env={}, now=NOW, tz=timezone.utc, cache_dir=None)
    assert (codex["totals"]["inputTokens"], codex["totals"]["outputTokens"]) == (10, 6)


def test_date_folders_are_found_by_listing_not_probing(tmp_path) -> None:
    from engine.cost.codex import _date_dirs

    for rel in ("2026/06/14", "2026/06/15", "2026/07/01", "2026/02/30", "2026/6/16", "2026/06/xx", "2025/12/31",
                "2026/06/15a", "notes"):
        (tmp_path / rel).mkdir(parents=True)
    (tmp_path / "2026" / "06" / "13").write_text("a file, not a folder")
    got = _date_dirs(str(tmp_path), "2025-12-31", "2026-06-30")
    assert [d for d, _ in got] == ["2025-12-31", "2026-06-14", "2026-06-15"]
    assert got[1][1] == str(tmp_path / "2026" / "06" / "14")
    assert _date_dirs(str(tmp_path / "missing"), "2026-01-01", "2026-12-31") == []


def test_files_without_a_session_id_are_told_apart_by_file(logs: LogHome) -> None:
    """Rows of a file with no session_meta are keyed by the file (device and inode): two such
    files with the same events are two sessions, counted twice, also when one grows later."""
    events = [codex_turn("2026-06-15T09:00:00Z", "gpt-5"),
              codex_tokens("2026-06-15T09:01:00Z", (100, 0, 10), (100, 0, 10))]
    logs.write(".codex/sessions/2026/06/15/rollout-2026-06-15T09-00-00-p.jsonl", events)
    logs.write(".codex/sessions/2026/06/15/rollout-2026-06-15T09-00-00-q.jsonl", events)

    def total(cache):
        (codex,) = scan_cost(["codex"], days=30, home=logs.home, env={}, now=NOW, tz=timezone.utc, cache_dir=cache)
        return codex["totals"]["totalTokens"]

    assert total(None) == total(logs.cache) == 2 * 110
    logs.append(".codex/sessions/2026/06/15/rollout-2026-06-15T09-00-00-q.jsonl",
                [codex_tokens("2026-06-15T09:02:00Z", (150, 0, 15), (50, 0, 5))])
    assert total(logs.cache) == total(None) == 2 * 110 + 55


def test_token_count_with_invalid_utf8_is_skipped_and_counted(logs: LogHome) -> None:
    events = [codex_meta("2026-06-15T09:00:00Z", "u"), codex_turn("2026-06-15T09:00:00Z", "gpt-5"),
              codex_tokens("2026-06-15T09:01:00Z", (100, 0, 10), (100, 0, 10))]
    bad = codex_tokens("2026-06-15T09:02:00Z", (150, 0, 15), (50, 0, 5)).replace(
        '"rate_limits":{}', '"rate_limits":{"note":"\udcff"}').encode("utf-8", "surrogateescape")
    assert b'"\xff"' in bad
    path = logs.home / S1
    path.parent.mkdir(parents=True)
    path.write_bytes("\n".join(events).encode() + b"\n" + bad + b"\n")
    (codex,) = scan_cost(["codex"], days=30, home=logs.home, env={}, now=NOW, tz=timezone.utc, cache_dir=None)
    assert codex["totals"]["totalTokens"] == 110 and codex["diagnostics"] == {"skippedLines": 1}


def test_a_file_linked_into_two_roots_counts_once(logs: LogHome) -> None:
    """A session reachable as sessions/…/x.jsonl and, hard-linked, as archived_sessions/x.jsonl
    (one inode) is one file: read once, under its sessions/ path; without a session id, whose
    rows are keyed by the file, it would otherwise count twice."""
    import os

    from engine.cost import codex as codex_mod
    from engine.cost.scanner import _listing
    from engine.cost.ledger import Ledger

    events = [codex_turn("2026-06-15T09:00:00Z", "gpt-5"),
              codex_tokens("2026-06-15T09:01:00Z", (100, 0, 10), (100, 0, 10))]
    live = ".codex/sessions/2026/06/15/rollout-2026-06-15T09-00-00-nosid.jsonl"
    logs.write(live, events)
    linked = logs.home / ".codex/archived_sessions/rollout-2026-06-15T09-00-00-nosid.jsonl"
    linked.parent.mkdir(parents=True)
    try:
        os.link(logs.home / live, linked)
    except OSError:
        pytest.skip("no hard links here")
    for cache in (None, logs.cache, logs.cache):
        (codex,) = scan_cost(["codex"], days=30, home=logs.home, env={}, now=NOW, tz=timezone.utc, cache_dir=cache)
        assert codex["totals"]["totalTokens"] == 110
    listing, _ = _listing("codex", Ledger("codex", None, "UTC"), logs.home, {}, timezone.utc, "2026-05-01",
                          "2026-06-17", True)
    assert list(listing) == [str(logs.home / live)]
    assert codex_mod.codex_roots(logs.home, {})[1] == linked.parent


def test_lines_in_codex_layout_are_read_by_their_own_type(logs: LogHome) -> None:
    """A line in Codex's layout ({"timestamp":"<24 chars>","type":...) is read by its own type: a
    response item carrying a structured token_count object is not, even when it is malformed (so
    it is not a skipped line either).  A line in another layout is read when it holds one of the
    types anywhere, and its parse failure counts."""
    ts = "2026-06-15T09:00:00.000Z"
    embedded = ('{"timestamp":"2026-06-15T09:05:00.000Z","type":"response_item","payload":{"type":"custom",'
                '"items":[{"type":"token_count","info":{"total_token_usage":{"input_tokens":999999}}}]')  # cut short
    logs.write(".codex/sessions/2026/06/15/rollout-2026-06-15T09-00-00-lay.jsonl", [
        codex_meta(ts, "lay"),
        codex_turn(ts, "gpt-5"),
        codex_tokens("2026-06-15T09:01:00.000Z", (100, 0, 10), (100, 0, 10)),
        embedded,
        codex_tokens("2026-06-15T09:06:00.000Z", (150, 0, 15), (50, 0, 5)),
    ])
    (codex,) = scan_cost(["codex"], days=30, home=logs.home, env={}, now=NOW, tz=timezone.utc, cache_dir=None)
    assert codex["totals"]["totalTokens"] == 165 and "diagnostics" not in codex
    # the same malformed line with a 20-character timestamp is not in Codex's layout: searched, read, counted
    logs.write(".codex/sessions/2026/06/15/rollout-2026-06-15T10-00-00-other.jsonl", [
        embedded.replace("09:05:00.000Z", "10:05:00Z"),
        codex_meta("2026-06-15T10:00:00Z", "other"),
        codex_tokens("2026-06-15T10:01:00Z", (7, 0, 1), (7, 0, 1)),
    ])
    (codex,) = scan_cost(["codex"], days=30, home=logs.home, env={}, now=NOW, tz=timezone.utc, cache_dir=None)
    assert codex["totals"]["totalTokens"] == 165 + 8 and codex["diagnostics"] == {"skippedLines": 1}
