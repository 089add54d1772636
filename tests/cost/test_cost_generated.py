"""The scan must match gen_cost_logs.py's manifest of true totals exactly (per UTC day and in total)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

import pytest

from engine.cost import scan_cost
from engine.cost.pricing import normalize_claude_model, normalize_codex_model

# shared/ lies beside the checkout (the session's /work/main and CI's fresh clone alike); /work/shared otherwise
_CANDIDATES = (Path(__file__).resolve().parents[3] / "shared" / "tools" / "gen_cost_logs.py",
               Path("/work/shared/tools/gen_cost_logs.py"))
GEN = next((p for p in _CANDIDATES if p.exists()), _CANDIDATES[0])
IN_CI = bool(os.environ.get("CI"))  # read at import: the suite's autouse fixture empties the environment


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    if not GEN.exists():
        if IN_CI:  # CI always has shared/: a missing generator must not pass as a skip there
            pytest.fail(f"gen_cost_logs.py not found at {GEN}")
        pytest.skip("gen_cost_logs.py (shared/tools) is not on this machine")
    home = tmp_path_factory.mktemp("gen") / "home"
    # high resume/dup/subagent rates so every dedup rule is exercised in a small corpus
    subprocess.run([sys.executable, str(GEN), "--home", str(home), "--size", "3MB", "--seed", "7",
                    "--end-date", "2026-06-30", "--days", "20", "--resume-rate", "0.4", "--codex-dup-rate", "0.3",
                    "--subagent-rate", "0.3", "--synthetic-rate", "0.05", "--tool-median", "300"],
                   check=True, capture_output=True, timeout=120)
    return home, json.loads((home / "cost-corpus-manifest.json").read_text())


def expected(manifest: dict, kind: str) -> dict[str, dict[str, int]]:
    roots = [r for r in manifest["truth"] if ("codex" in r) == (kind == "codex")]
    out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for root in roots:
        for day, models in manifest["truth"][root].items():
            for model, c in models.items():
                d = out[day]
                if kind == "codex":
                    d["inputTokens"] += c["input_tokens"]
                    d["cacheReadTokens"] += c["cached_input_tokens"]
                    d["outputTokens"] += c["output_tokens"]
                    d["model:" + normalize_codex_model(model)] += c["input_tokens"] + c["output_tokens"]
                else:
                    d["inputTokens"] += c["input_tokens"]
                    d["cacheReadTokens"] += c["cache_read_input_tokens"]
                    d["cacheCreationTokens"] += c["cache_creation_input_tokens"]
                    d["outputTokens"] += c["output_tokens_last_wins"]
                    d["model:" + normalize_claude_model(model)] += (
                        c["input_tokens"] + c["cache_read_input_tokens"] + c["cache_creation_input_tokens"]
                        + c["output_tokens_last_wins"])
    return {k: dict(v) for k, v in out.items()}


def observed(payload: dict) -> dict[str, dict[str, int]]:
    out = {}
    for e in payload["daily"]:
        d = {k: e[k] for k in ("inputTokens", "cacheReadTokens", "cacheCreationTokens", "outputTokens") if k in e}
        for b in e["modelBreakdowns"]:
            d["model:" + b["modelName"]] = b["totalTokens"]
        out[e["date"]] = d
    return out


@pytest.mark.parametrize("cached", [False, True])
def test_scan_matches_manifest(corpus: tuple[Path, dict], tmp_path: Path, cached: bool) -> None:
    home, manifest = corpus
    assert manifest["stats"].get("claude_resumed_copies", 0) > 0
    now = datetime(2026, 7, 1, 9, 0, tzinfo=timezone.utc)
    kw = dict(days=40, home=home, env={}, now=now, tz=timezone.utc, cache_dir=tmp_path if cached else None)
    payloads = scan_cost(["codex", "claude"], **kw)
    if cached:  # the warm rescan must agree too
        payloads = scan_cost(["codex", "claude"], **kw)
    codex, claude = payloads
    assert observed(codex) == expected(manifest, "codex")
    assert observed(claude) == expected(manifest, "claude")
    assert "diagnostics" not in claude and "diagnostics" not in codex   # clean corpus, every model priced
