"""`engine cost` CLI glue: flags, JSON encoding, text output."""
from __future__ import annotations

import argparse
import io
import json
from datetime import timezone

from costlog_builders import NOW, LogHome, claude_line, codex_meta, codex_tokens, codex_turn

from engine.cost import cli
from engine.cost.report import dumps, tokens_text


def run(logs: LogHome, *argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(list(argv))
    out, err = io.StringIO(), io.StringIO()
    code = cli.run(args, env={}, home=logs.home, now=NOW, tz=timezone.utc, cache_dir=None, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def corpus(logs: LogHome) -> None:
    logs.write(".claude/projects/p/a.jsonl", [
        claude_line(mid="m1", rid="r1", model="claude-haiku-4-5-20251001", inp=1000, cr=1_000_000, cc=0,
                    out=1000)])   # (1000 * 1 + 1M * 0.1 + 1000 * 5) / 1e6 = $0.106
    logs.write(".codex/sessions/2026/06/15/rollout-2026-06-15T09-00-00-x.jsonl", [
        codex_meta("2026-06-15T09:00:00Z", "x"), codex_turn("2026-06-15T09:00:00Z", "gpt-5"),
        codex_tokens("2026-06-15T09:01:00Z", (800_000, 0, 0), (800_000, 0, 0))])     # $1.00 exactly


def test_json_pretty_is_sorted_swift_style_and_integral_floats_have_no_fraction(logs: LogHome) -> None:
    corpus(logs)
    code, out, err = run(logs, "--format", "json", "--pretty", "--provider", "codex")
    assert code == 0 and err == ""
    assert out.endswith("]\n")
    data = json.loads(out)
    assert [p["provider"] for p in data] == ["codex"]
    assert '"sessionCostUSD" : 1,' in out and '"updatedAt" : "2026-06-15T18:00:00Z"' in out
    lines = out.splitlines()
    assert lines[1] == "  {" and lines[2].startswith('    "currencyCode" : ')
    keys = [ln.strip().split('"')[1] for ln in lines if ln.startswith('    "')]
    assert keys == sorted(keys)


def test_json_all_is_codex_then_claude(logs: LogHome) -> None:
    corpus(logs)
    code, out, _ = run(logs, "--json-only")
    data = json.loads(out)
    assert [p["provider"] for p in data] == ["codex", "claude"]
    assert data[1]["totals"]["totalCost"] == 0.106
    assert "\n" not in out.strip()   # compact


def test_text_output(logs: LogHome) -> None:
    corpus(logs)
    code, out, _ = run(logs, "--provider", "claude", "--days", "7")
    assert code == 0
    assert out.splitlines() == [
        "Claude Cost (API-rate estimate)",
        "Today: $0.11 · 1M tokens",
        "Last 7 days: $0.11 · 1M tokens",
        "Estimated from local Claude logs at API rates; token totals include cache read/write tokens "
        "and may differ from Claude Code /status.",
    ]


def test_days_clamped_and_non_integer_defaults(logs: LogHome) -> None:
    corpus(logs)
    assert json.loads(run(logs, "--json", "--days", "999", "--provider", "claude")[1])[0]["historyDays"] == 365
    assert json.loads(run(logs, "--json", "--days", "0", "--provider", "claude")[1])[0]["historyDays"] == 1
    assert json.loads(run(logs, "--json", "--days", "abc", "--provider", "claude")[1])[0]["historyDays"] == 30


def test_unsupported_providers(logs: LogHome) -> None:
    code, out, err = run(logs, "--provider", "cursor,claude", "--format", "json")
    assert code == 0 and err == "Skipping providers without local cost usage: cursor\n"
    assert [p["provider"] for p in json.loads(out)] == ["claude"]
    code, out, err = run(logs, "--provider", "cursor")
    assert code == 1 and out == "" and "Error: cost is only supported for Claude and Codex." in err
    code, out, err = run(logs, "--provider", "cursor", "--json-only")
    assert code == 1 and err == "" and json.loads(out)[0]["error"]["kind"] == "args"


def test_token_formatting() -> None:
    assert [tokens_text(n) for n in (0, 999, 1000, 1049, 1051, 9949, 9960, 12_345, 3_400_000, 1_100_000_000,
                                       -2500)] == \
        ["0", "999", "1K", "1K", "1.1K", "9.9K", "10K", "12K", "3.4M", "1.1B", "-2.5K"]


def test_dumps_omits_fraction_only_for_integral_floats() -> None:
    assert dumps({"a": 28.0, "b": 112.4, "c": [1.0, 0.5]}, pretty=False) == '{"a":28,"b":112.4,"c":[1,0.5]}'


def test_compact_dumps_is_what_json_dumps_writes() -> None:
    """The compact encoder (msgspec, floats written by repr) gives json.dumps' exact text:
    exponents like ``1e-07``, non-ASCII kept, control characters escaped, key order kept."""
    import random

    from engine.cost.report import _clean

    rnd = random.Random(3)

    def value(depth: int = 0):
        c = rnd.random()
        if depth > 3 or c < 0.3:
            return rnd.choice([rnd.random() * 10 ** rnd.randint(-9, 6), 1e16, 1e-07, 2.5e-05, 0.0, -2.5, 3, 2 ** 60,
                               float(2 ** 53), "é—✓\x01\"\\", None, True])
        if c < 0.65:
            return {f"k{i}é": value(depth + 1) for i in range(rnd.randint(0, 4))}
        return [value(depth + 1) for _ in range(rnd.randint(0, 4))]

    for _ in range(2000):
        v = value()
        assert dumps(v, pretty=False) == json.dumps(_clean(v), separators=(",", ":"), ensure_ascii=False)
    assert dumps({"a": 1e-07, "b": 2.0}, pretty=False) == '{"a":1e-07,"b":2}'


def test_progress_bar_only_for_text_on_a_tty(logs: LogHome, monkeypatch) -> None:
    corpus(logs)
    monkeypatch.setattr(cli, "PROGRESS_MIN_BYTES", 0)

    class TTY(io.StringIO):
        def isatty(self) -> bool:
            return True

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    for argv, expect_bar in ((["--provider", "claude"], True), (["--provider", "claude", "--format", "json"], False)):
        err = TTY()
        out = io.StringIO()
        code = cli.run(parser.parse_args(argv), env={"TERM": "dumb"}, home=logs.home, now=NOW, tz=timezone.utc,
                       cache_dir=None, stdout=out, stderr=err)
        assert code == 0
        assert ("Scanning session logs" in err.getvalue()) is expect_bar


def test_engine_cost_never_imports_the_fetch_side(logs: LogHome, tmp_path) -> None:
    """`engine cost` is run every minute by tray apps: it must not pay for httpx, jinja2 or asyncio
    (nor for shutil, which argparse imports for the terminal width, zoneinfo for TZ=UTC, pickle,
    json or hashlib, which loads OpenSSL)."""
    import os
    import subprocess
    import sys

    corpus(logs)
    probe = ("import sys\nfrom engine.cli import main\n"
             "code = main(['cost', '--format', 'json', '--provider', 'codex'])\n"
             "heavy = sorted(m for m in ('httpx', 'jinja2', 'asyncio', 'engine.context', 'engine.runner', 'shutil', "
             "'zoneinfo', 'pickle', 'json', 'hashlib') "
             "if m in sys.modules)\n"
             "print('HEAVY', heavy, code, file=sys.stderr)\n")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(logs.home), "ENGINE_CACHE_DIR": str(tmp_path / "c"),
           "TZ": "UTC"}
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60)
    assert "HEAVY [] 0" in done.stderr, done.stderr
    assert json.loads(done.stdout)[0]["provider"] == "codex"


def test_console_exits_fast_after_cost_without_losing_output(logs: LogHome, tmp_path) -> None:
    """`engine cost` skips the interpreter's teardown (os._exit): piped, block-buffered output must
    still arrive whole, with the exit code of the run."""
    import os
    import subprocess
    import sys

    corpus(logs)
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(logs.home), "ENGINE_CACHE_DIR": str(tmp_path / "c"),
           "TZ": "UTC"}
    script = "import sys; from engine.cli import console; sys.argv = ['engine'] + sys.argv[1:]; console()"
    done = subprocess.run([sys.executable, "-c", script, "cost", "--format", "json", "--pretty", "--days", "365"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)          # the whole document, flushed before the exit
    assert [p["provider"] for p in data] == ["codex", "claude"]
    bad = subprocess.run([sys.executable, "-c", script, "cost", "--provider", "cursor", "--format", "json"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and json.loads(bad.stdout)[0]["error"]["kind"] == "args"
