"""The incremental cache: appends parse only new bytes, rewrites rescan, bad caches are discarded."""
from __future__ import annotations

import json
import os
import time
from datetime import timezone
from pathlib import Path

import pytest
from costlog_builders import NOW, LogHome, claude_line, codex_meta, codex_tokens, codex_turn

from engine.cost import claude as claude_mod
from engine.cost import codex as codex_mod
from engine.cost import scan_cost

A = ".claude/projects/p/a.jsonl"
B = ".claude/projects/p/b.jsonl"
X = ".codex/sessions/2026/06/15/rollout-2026-06-15T09-00-00-x.jsonl"


def scan(logs: LogHome, cache: Path | None, **kw):
    return scan_cost(["claude", "codex"], days=30, home=logs.home, env={}, now=NOW, tz=timezone.utc,
                     cache_dir=cache, **kw)


def strip(payloads):
    return json.loads(json.dumps(payloads))


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, int]]:
    seen: list[tuple[str, str, int]] = []
    real_claude, real_codex = claude_mod.parse_claude_file, codex_mod.parse_codex_file

    def spy_claude(path, offset, tz):
        seen.append(("claude", os.path.basename(path), offset))
        return real_claude(path, offset, tz)

    def spy_codex(path, offset, tz, state, forks_resolved=False):
        seen.append(("codex", os.path.basename(path), offset))
        return real_codex(path, offset, tz, state, forks_resolved)

    monkeypatch.setattr(claude_mod, "parse_claude_file", spy_claude)
    monkeypatch.setattr(codex_mod, "parse_codex_file", spy_codex)
    return seen


def base(logs: LogHome) -> None:
    logs.write(A, [claude_line(mid="m1", rid="r1", inp=1, cr=10, cc=5, out=2),
                   claude_line(mid="m1", rid="r1", inp=1, cr=10, cc=5, out=3)])
    logs.write(B, [claude_line(mid="m2", rid="r2", inp=7, out=7)])
    logs.write(X, [codex_meta("2026-06-15T09:00:00Z", "x"), codex_turn("2026-06-15T09:00:00Z", "gpt-5"),
                   codex_tokens("2026-06-15T09:01:00Z", (100, 50, 10), (100, 50, 10))])


def test_warm_scan_parses_nothing(logs: LogHome, calls) -> None:
    base(logs)
    first = scan(logs, logs.cache)
    assert sorted(c[1] for c in calls) == ["a.jsonl", "b.jsonl", os.path.basename(X)]
    calls.clear()
    assert scan(logs, logs.cache) == first
    assert calls == []
    assert not [p for p in logs.cache.rglob("*") if p.name.endswith(".tmp")]


def test_append_parses_only_new_bytes(logs: LogHome, calls) -> None:
    base(logs)
    scan(logs, logs.cache)
    size_a = (logs.home / A).stat().st_size
    size_x = (logs.home / X).stat().st_size
    # the stream of m1 continues after the cached offset (its last chunk wins), plus a new message
    logs.append(A, [claude_line(mid="m1", rid="r1", inp=1, cr=10, cc=5, out=9),
                    claude_line(mid="m3", rid="r3", inp=100, out=1)])
    logs.append(X, [codex_tokens("2026-06-15T09:02:00Z", (130, 60, 15), (30, 10, 5)),
                    codex_tokens("2026-06-15T09:03:00Z", (130, 60, 15), (30, 10, 5))])   # re-emitted
    calls.clear()
    warm = scan(logs, logs.cache)
    assert sorted(calls) == [("claude", "a.jsonl", size_a), ("codex", os.path.basename(X), size_x)]
    cold = scan(logs, None)
    assert strip(warm) == strip(cold)
    claude, codex = warm
    assert claude["totals"]["outputTokens"] == 9 + 1 + 7
    assert claude["totals"]["totalTokens"] == (1 + 10 + 5 + 9) + (100 + 1) + 14
    assert (codex["totals"]["inputTokens"], codex["totals"]["cacheReadTokens"],
            codex["totals"]["outputTokens"]) == (130, 60, 15)


def test_new_file_sharing_keys_is_deduplicated_incrementally(logs: LogHome) -> None:
    base(logs)
    scan(logs, logs.cache)
    # a resumed session appears later, re-copying m1's first chunk and m2
    logs.write(".claude/projects/p/c.jsonl", [claude_line(mid="m1", rid="r1", inp=1, cr=10, cc=5, out=2),
                                              claude_line(mid="m2", rid="r2", inp=7, out=7),
                                              claude_line(mid="m4", rid="r4", inp=1, out=1)])
    warm = scan(logs, logs.cache)
    assert strip(warm) == strip(scan(logs, None))
    assert warm[0]["totals"]["totalTokens"] == (1 + 10 + 5 + 3) + 14 + 2
    # and removing the original leaves the copy's (shorter) stream as the only one
    (logs.home / A).unlink()
    warm = scan(logs, logs.cache)
    assert strip(warm) == strip(scan(logs, None))
    assert warm[0]["totals"]["totalTokens"] == (1 + 10 + 5 + 2) + 14 + 2


def test_rewritten_and_truncated_files_are_rescanned(logs: LogHome, calls) -> None:
    base(logs)
    scan(logs, logs.cache)
    # same size or larger but different content: the signature check forces a full rescan
    text = (logs.home / A).read_text().replace('"output_tokens":3', '"output_tokens":8')
    (logs.home / A).write_text(text + claude_line(mid="m9", rid="r9", inp=1, out=1) + "\n")
    (logs.home / X).write_text("\n".join([codex_meta("2026-06-15T09:00:00Z", "x"),
                                          codex_turn("2026-06-15T09:00:00Z", "gpt-5"),
                                          codex_tokens("2026-06-15T09:01:00Z", (5, 0, 1), (5, 0, 1))]) + "\n")
    calls.clear()
    warm = scan(logs, logs.cache)
    assert sorted(calls) == [("claude", "a.jsonl", 0), ("codex", os.path.basename(X), 0)]
    assert strip(warm) == strip(scan(logs, None))
    assert warm[0]["totals"]["outputTokens"] == 8 + 1 + 7
    assert warm[1]["totals"]["totalTokens"] == 6


def test_truncated_tail_is_completed_later(logs: LogHome) -> None:
    line = claude_line(mid="m5", rid="r5", inp=3, out=4)
    cut = line.index('"type":"assistant"') + 25   # the writer stopped after the markers
    logs.write(A, [claude_line(mid="m1", rid="r1", inp=1, out=1), line[:cut]], newline_at_end=False)
    first = scan(logs, logs.cache)[0]
    assert first["totals"]["totalTokens"] == 2 and first["diagnostics"] == {"skippedLines": 1}
    with (logs.home / A).open("a") as f:
        f.write(line[cut:] + "\n")
    second = scan(logs, logs.cache)[0]
    assert second["totals"]["totalTokens"] == 9 and "diagnostics" not in second
    assert strip(second) == strip(scan(logs, None)[0])


@pytest.mark.parametrize("damage", ["garbage", "foreign", "truncated-files", "missing-keys", "truncated-dups",
                                    "stale-files-gen", "bad-utf8-index", "bad-utf8-files", "bad-utf8-rows",
                                    "bad-key-counts"])
def test_bad_cache_is_discarded(logs: LogHome, damage: str, tmp_path: Path) -> None:
    base(logs)
    if damage == "truncated-dups":  # a key in two files: the dups file exists
        logs.write(".claude/projects/p/c.jsonl", [claude_line(mid="m2", rid="r2", inp=7, out=7)])
    expected = strip(scan(logs, None))
    scan(logs, logs.cache)
    d = logs.cache / "cost-usage"
    (index,) = d.glob("cost-claude-index-*.json")
    if damage == "garbage":
        index.write_bytes(b"\x00not json")
    elif damage == "foreign":
        doc = json.loads(index.read_text())
        doc["header"]["format"] = "engine-cost/0"
        doc["total"] = {"2026-06-15|claude-sonnet-4-5|0": [1, 1, 1, 1, 99.0, 0]}
        index.write_text(json.dumps(doc))
    elif damage == "truncated-files":
        shards = sorted(d.glob("cost-claude-files-*.json"))
        assert shards
        for f in shards:
            f.write_bytes(f.read_bytes()[:20])
    elif damage == "truncated-dups":
        (f,) = d.glob("cost-claude-dups-*.json")
        f.write_bytes(f.read_bytes()[:5])
    elif damage.startswith("bad-utf8-"):  # a byte flipped inside a JSON string: not UTF-8 any more
        part = {"index": "cost-claude-index-*.json", "files": "cost-claude-files-*.json",
                "rows": "cost-claude-rows-*.json"}[damage.removeprefix("bad-utf8-")]
        for f in sorted(d.glob(part)):
            data = f.read_bytes()
            at = data.index(b'"', data.index(b"claude")) - 1   # inside a string that names a path or model
            f.write_bytes(data[:at] + b"\xff" + data[at + 1:])
    elif damage == "bad-key-counts":  # a file's key count grown by one: the runs no longer add up
        (f,) = d.glob("cost-claude-keys-*.bin")
        data = bytearray(f.read_bytes())
        first = 24 + (1 << 19)
        data[first:first + 8] = (int.from_bytes(data[first:first + 8], "little") + 1).to_bytes(8, "little")
        f.write_bytes(bytes(data))
    elif damage == "stale-files-gen":
        doc = json.loads(index.read_text())
        doc["fshard_gen"] = [g + 1 if g else 0 for g in doc["fshard_gen"]]
        index.write_text(json.dumps(doc))
    else:
        (keys,) = d.glob("cost-claude-keys-*.bin")
        keys.unlink()
    # something changed, so the damaged part has to be read
    logs.append(B, [claude_line(mid="m6", rid="r6", inp=1, out=1)])
    got = strip(scan(logs, logs.cache))
    assert got == strip(scan(logs, None))
    assert got[0]["totals"]["totalTokens"] == expected[0]["totals"]["totalTokens"] + 2
    scan(logs, tmp_path / "fresh")
    assert _stored_keys(logs.cache, "claude") == _stored_keys(tmp_path / "fresh", "claude")


def test_refresh_ignores_cache(logs: LogHome, calls) -> None:
    base(logs)
    scan(logs, logs.cache)
    calls.clear()
    scan(logs, logs.cache, refresh=True)
    assert len(calls) == 3


def test_pool_path_matches_in_process(logs: LogHome, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.cost import scanner

    base(logs)
    for i in range(6):
        logs.write(f".claude/projects/q/{i}.jsonl", [claude_line(mid=f"k{i}", rid="r", inp=i, out=1)])
    expected = strip(scan(logs, None))
    monkeypatch.setattr(scanner, "POOL_MIN_BYTES", 0)
    monkeypatch.setattr(scanner, "cpu_count", lambda: 2)
    progress: list[tuple[int, int]] = []
    got = scan_cost(["claude", "codex"], days=30, home=logs.home, env={}, now=NOW, tz=timezone.utc,
                    cache_dir=None, progress=lambda d, t: progress.append((d, t)))
    assert strip(got) == expected
    assert progress and progress[-1][0] == progress[-1][1] > 0


def _cache_files(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


def _part(name: str) -> str:
    """A cache file's part: its name without the generation (``cost-claude-rows-07``)."""
    return name.rsplit("-", 1)[0]


def test_new_file_rewrites_only_its_shards(logs: LogHome) -> None:
    """Adding a file writes its own metadata/rows shards, the keys, the dups and the index --
    no other shard -- as new files of a new generation, and deletes the ones they replace;
    the incrementally kept totals equal a full scan's."""
    from engine.cost.ledger import fshard_of, shard_of

    base(logs)
    for i in range(12):
        logs.write(f".claude/projects/q/{i}.jsonl", [claude_line(mid=f"k{i}", rid="r", inp=i + 1, out=1)])
    scan(logs, logs.cache)
    d = logs.cache / "cost-usage"
    before = _cache_files(d)
    new = ".claude/projects/q/new.jsonl"
    # shares a key with b.jsonl (a resumed session), so a dup appears too
    logs.write(new, [claude_line(mid="m2", rid="r2", inp=7, out=7), claude_line(mid="n1", rid="n", inp=3, out=4)])
    got = strip(scan(logs, logs.cache))
    assert got == strip(scan(logs, None))
    after = _cache_files(d)
    path = str(logs.home / new)
    allowed = {f"cost-claude-files-{fshard_of(path):02d}", f"cost-claude-rows-{shard_of(path):02d}", "cost-claude-keys",
               "cost-claude-dups", "cost-claude-index"}
    written = {n for n in after if n not in before}
    gone = {n for n in before if n not in after}
    assert {_part(n) for n in written} == allowed
    assert {_part(n) for n in gone} == allowed & {_part(n) for n in before}   # (each replaced one)
    assert all(after[n] == before[n] for n in after if n in before)     # nothing rewritten in place
    assert len({_part(n) for n in after}) == len(after)                  # one file per part


def test_stale_and_foreign_files_are_swept(logs: LogHome) -> None:
    """A save deletes its kind's files of older generations that its index does not name (a
    crashed save's leftovers, an older format's files) and leaves newer ones and other kinds'."""
    base(logs)
    scan(logs, logs.cache)
    d = logs.cache / "cost-usage"
    leftovers = ["cost-claude-index.json", "cost-claude-rows-03-0000000000000001.json",
                 "cost-claude-keys.bin.123-0.tmp"]
    newer = "cost-claude-rows-03-7fffffffffffffff.json"
    for n in leftovers + [newer]:
        (d / n).write_bytes(b"{}")
    codex_before = {n: b for n, b in _cache_files(d).items() if n.startswith("cost-codex-")}
    logs.append(B, [claude_line(mid="m6", rid="r6", inp=1, out=1)])
    assert strip(scan(logs, logs.cache)) == strip(scan(logs, None))
    names = set(os.listdir(d))
    assert not names & set(leftovers)
    assert newer in names
    assert {n: b for n, b in _cache_files(d).items() if n.startswith("cost-codex-")} == codex_before


def test_newest_valid_index_wins(logs: LogHome) -> None:
    """Readers take the newest index that decodes: a half-written newer one (another process
    saving right now) is passed over, not trusted and not a reason to rescan everything."""
    base(logs)
    first = strip(scan(logs, logs.cache))
    d = logs.cache / "cost-usage"
    (index,) = d.glob("cost-claude-index-*.json")
    half = d / "cost-claude-index-7ffffffffffffffe.json"
    half.write_bytes(index.read_bytes()[:100])
    from engine.cost.ledger import Ledger
    from engine.cost.scanner import tz_key

    led = Ledger.load("claude", d, tz_key(timezone.utc))
    assert led.stat and led.gen == int(index.name.rsplit("-", 1)[1].split(".")[0], 16)
    assert strip(scan(logs, logs.cache)) == first
    # a name beyond any generation is not an index; the next save still works and sweeps both
    (d / "cost-claude-index-ffffffffffffffff.json").write_bytes(b"{}")
    logs.append(B, [claude_line(mid="m6", rid="r6", inp=1, out=1)])
    assert strip(scan(logs, logs.cache)) == strip(scan(logs, None))
    assert len(list(d.glob("cost-claude-index-*.json"))) == 1


@pytest.mark.parametrize("step", ["add", "remove", "rewrite", "append"])
def test_incremental_totals_equal_a_full_resum(logs: LogHome, step: str) -> None:
    """The per-key sums kept in the index (``raw``, ``total``) are exactly what re-summing every
    file's ``agg`` and dup gives, whichever kind of change brought them there."""
    from engine.cost.ledger import Ledger
    from engine.cost.scanner import tz_key

    base(logs)
    for i in range(5):  # several files on one day, with cost floats that do not add associatively
        logs.write(f".claude/projects/q/{i}.jsonl",
                   [claude_line(mid="m1", rid="r1", inp=1, cr=10, cc=5, out=3),
                    claude_line(mid=f"k{i}", rid="r", inp=3 * i + 1, cr=7 * i, out=i + 1)])
    scan(logs, logs.cache)
    q2 = logs.home / ".claude/projects/q/2.jsonl"
    if step == "add":
        logs.write(".claude/projects/q/z.jsonl", [claude_line(mid="k3", rid="r", inp=10, cr=21, out=4)])
    elif step == "remove":
        q2.unlink()
    elif step == "rewrite":
        logs.write(".claude/projects/q/2.jsonl", [claude_line(mid="w", rid="w", inp=5, out=5)])
    else:
        logs.append(".claude/projects/q/2.jsonl", [claude_line(mid="k9", rid="r", inp=9, cr=13, out=9)])
    assert strip(scan(logs, logs.cache)) == strip(scan(logs, None))
    led = Ledger.load("claude", logs.cache / "cost-usage", tz_key(timezone.utc))
    kept_total, kept_raw = led.totals(), dict(led.raw)
    led.total = led.raw = None
    assert led.totals() == kept_total and led.raw == kept_raw


def test_the_scan_pauses_the_cyclic_gc_and_restores_its_state(logs: LogHome) -> None:
    import gc

    base(logs)
    seen = []
    real = claude_mod.parse_claude_file

    def spy(*a, **k):
        seen.append(gc.isenabled())
        return real(*a, **k)

    claude_mod.parse_claude_file, saved = spy, claude_mod.parse_claude_file
    try:
        assert gc.isenabled()
        scan(logs, None)
        assert seen and not any(seen) and gc.isenabled()
        gc.disable()
        try:
            scan(logs, None)
            assert not gc.isenabled()   # a caller's choice is left alone
        finally:
            gc.enable()
    finally:
        claude_mod.parse_claude_file = saved


def test_codex_row_keys_keep_their_persisted_form() -> None:
    """Row keys are stored in the cache: the batched hashing must give key_hash of the joined fields."""
    from engine.cost.jsonl import key_hash
    from engine.cost.ledger import codex_row_keys

    rows = [["turn-1", 3, "2026-06-15", "gpt-5", 100, 50, 10, 0.1], [None, 0, "2026-06-15", "gpt-5", 0, 0, 1, None]]
    expected = [key_hash("\x1f".join(("session:s", r[0] or "", str(r[1]), r[2], r[3], str(r[4]), str(r[5]), str(r[6]))))
                for r in rows]
    assert codex_row_keys("session:s", rows) == expected
    assert expected[0] != expected[1]


def _stored_keys(cache: Path, kind: str) -> dict[str, list[int]]:
    from engine.cost.ledger import Ledger
    from engine.cost.scanner import tz_key

    led = Ledger.load(kind, cache / "cost-usage", tz_key(timezone.utc))
    return {p: sorted(hs) for p, hs in led.keys_by_path().items()}


def test_changes_keep_the_stored_keys_exact(logs: LogHome, tmp_path: Path) -> None:
    """Removals, rewrites, Claude appends and Codex extensions update the stored key hashes in
    place (without loading every key): after each round they must equal a cold scan's, and the
    totals a scan without cache."""
    X2 = ".codex/sessions/2026/06/15/rollout-2026-06-15T10-00-00-y.jsonl"
    base(logs)
    logs.write(".claude/projects/p/c.jsonl", [claude_line(mid="m1", rid="r1", inp=1, cr=10, cc=5, out=2),
                                              claude_line(mid="m5", rid="r5", inp=4, out=4)])   # shares m1 with A
    logs.write(X2, [codex_meta("2026-06-15T10:00:00Z", "y"), codex_turn("2026-06-15T10:00:00Z", "gpt-5"),
                    codex_tokens("2026-06-15T10:01:00Z", (10, 0, 1), (10, 0, 1))])
    scan(logs, logs.cache)
    rounds = [
        lambda: logs.append(A, [claude_line(mid="m6", rid="r6", inp=2, out=2)]),               # Claude append
        lambda: logs.append(X, [codex_tokens("2026-06-15T09:05:00Z", (150, 60, 20), (50, 10, 10))]),  # extend
        lambda: logs.write(B, [claude_line(mid="m7", rid="r7", inp=3, out=3)]),                # rewrite
        lambda: (logs.home / A).unlink(),                                                        # remove (dup owner)
        lambda: logs.write(".claude/projects/p/d.jsonl", [claude_line(mid="m5", rid="r5", inp=4, out=9)]),  # add dup
        lambda: (logs.home / X2).unlink(),
    ]
    for i, change in enumerate(rounds):
        change()
        assert strip(scan(logs, logs.cache)) == strip(scan(logs, None)), f"round {i}"
        fresh = tmp_path / f"fresh{i}"
        scan(logs, fresh)
        for kind in ("claude", "codex"):
            assert _stored_keys(logs.cache, kind) == _stored_keys(fresh, kind), f"round {i}: {kind}"


def _pool(monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.cost import scanner

    monkeypatch.setattr(scanner, "POOL_MIN_BYTES", 0)
    monkeypatch.setattr(scanner, "cpu_count", lambda: 2)


def _more(logs: LogHome) -> None:
    base(logs)
    for i in range(6):
        logs.write(f".claude/projects/q/{i}.jsonl", [claude_line(mid=f"k{i}", rid="r", inp=i, out=1),
                                                     claude_line(mid="m2", rid="r2", inp=7, out=7)])  # dups of B
    logs.write(".codex/sessions/2026/06/15/rollout-2026-06-15T11-00-00-z.jsonl",
               [codex_meta("2026-06-15T11:00:00Z", "z"), codex_turn("2026-06-15T11:00:00Z", "gpt-5"),
                codex_tokens("2026-06-15T11:01:00Z", (40, 0, 4), (40, 0, 4))])


def test_pool_hand_off_folds_and_saves_the_claude_cache(logs: LogHome, monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path, calls) -> None:
    """With worker processes, the first worker folds and saves the Claude ledger: the payloads,
    the stored keys and a later warm scan are those of a scan done in one process."""
    _more(logs)
    expected = strip(scan(logs, None))
    single = tmp_path / "single"
    scan(logs, single)
    _pool(monkeypatch)
    assert strip(scan(logs, logs.cache)) == expected
    for kind in ("claude", "codex"):
        assert _stored_keys(logs.cache, kind) == _stored_keys(single, kind)
    calls.clear()
    assert strip(scan(logs, logs.cache)) == expected
    assert calls == []                       # warm: the saved caches are whole, nothing is parsed


def test_pool_hand_off_failure_falls_back_to_scanning_here(logs: LogHome, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.cost import scanner

    _more(logs)
    expected = strip(scan(logs, None))
    _pool(monkeypatch)
    parent = os.getpid()
    real_fold = scanner._fold

    def fold(plan, results, tz):
        if os.getpid() != parent:
            raise RuntimeError("boom in the worker")
        return real_fold(plan, results, tz)

    monkeypatch.setattr(scanner, "_fold", fold)
    assert strip(scan(logs, logs.cache)) == expected
    monkeypatch.setattr(scanner, "_fold", real_fold)
    assert strip(scan(logs, logs.cache)) == expected


def test_unrolled_aggregates_equal_adding_each_row_in_order() -> None:
    """aggregate_claude/aggregate_codex are unrolled for speed: the same sums, bit for bit, as
    adding each row's vector to zeros in row order, and the rows' first and last day."""
    import random

    from engine.cost.ledger import (aggregate_claude, aggregate_codex, claude_aggkey, claude_vec, codex_aggkey,
                                    codex_vec)

    def reference(rows, aggkey, vec):
        agg: dict[str, list] = {}
        for row in rows:
            a = agg.setdefault(aggkey(row), [0, 0, 0, 0, 0.0, 0])
            for i, v in enumerate(vec(row)):
                a[i] += v
        return agg

    rnd = random.Random(5)
    days = ["2026-06-14", "2026-06-15", "2026-06-16"]
    claude = [[rnd.choice(days), rnd.choice(["opus", "haiku"]), rnd.randrange(9), rnd.randrange(9),
               rnd.randrange(9), 0, rnd.randrange(9), rnd.choice([None, rnd.random() / 7, 0.1]), 0,
               rnd.randrange(2)] for _ in range(300)]
    codex = [["t", i, rnd.choice(days), rnd.choice(["gpt-5", "gpt-9"]), rnd.randrange(99), rnd.randrange(9),
              rnd.randrange(9), rnd.choice([None, rnd.random() / 3])] for i in range(300)]
    agg, span = aggregate_claude(claude)
    assert agg == reference(claude, claude_aggkey, claude_vec) and span == [min(days), max(days)]
    agg, span = aggregate_codex(codex)
    assert agg == reference(codex, codex_aggkey, codex_vec) and span == [min(days), max(days)]
    assert aggregate_claude([]) == ({}, None)


def _split(monkeypatch: pytest.MonkeyPatch) -> None:
    """Warm scans of both kinds run in two processes (_scan_split) whatever the cache's size."""
    from engine.cost import scanner

    monkeypatch.setattr(scanner, "SPLIT_MIN_INDEX_BYTES", 0)
    monkeypatch.setattr(scanner, "cpu_count", lambda: 2)


def test_split_warm_scan_equals_one_process(logs: LogHome, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A warm scan in two processes (the Claude ledger brought up to date, folded and saved by a
    forked child) gives the payloads and leaves the stored keys of a scan done in one process,
    after new, grown and removed files of both kinds."""
    from engine.cost import scanner

    _more(logs)
    scan(logs, logs.cache)
    _split(monkeypatch)
    assert scanner._splits(["claude", "codex"], logs.cache / "cost-usage", False, None)
    parent = os.getpid()
    real_scan_kind = scanner.scan_kind

    def spy(kind, **kw):
        if kind == "claude" and os.getpid() != parent:
            os.write(w, b"c")  # (the child's own memory is gone with it: tell the parent through a pipe)
        return real_scan_kind(kind, **kw)

    r, w = os.pipe()
    monkeypatch.setattr(scanner, "scan_kind", spy)
    X2 = ".codex/sessions/2026/06/15/rollout-2026-06-15T12-00-00-w.jsonl"
    rounds = [
        lambda: None,
        lambda: logs.write(".claude/projects/q/new.jsonl", [claude_line(mid="n1", rid="n", inp=3, out=4),
                                                            claude_line(mid="m2", rid="r2", inp=7, out=7)]),
        lambda: logs.write(X2, [codex_meta("2026-06-15T12:00:00Z", "w"), codex_turn("2026-06-15T12:00:00Z", "gpt-5"),
                                codex_tokens("2026-06-15T12:01:00Z", (9, 1, 2), (9, 1, 2))]),
        lambda: logs.append(A, [claude_line(mid="m9", rid="r9", inp=5, out=5)]),
        lambda: (logs.home / ".claude/projects/q/1.jsonl").unlink(),
    ]
    for i, change in enumerate(rounds):
        change()
        got = strip(scan(logs, logs.cache))
        assert got == strip(scan(logs, None)), f"round {i}"
        fresh = tmp_path / f"fresh{i}"
        scan(logs, fresh)
        for kind in ("claude", "codex"):
            assert _stored_keys(logs.cache, kind) == _stored_keys(fresh, kind), f"round {i}: {kind}"
        # the child deletes the Claude files its save replaced after it has answered: soon one file a part
        deadline = time.monotonic() + 10
        while True:
            names = os.listdir(logs.cache / "cost-usage")
            if len({_part(n) for n in names}) == len(names) or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        assert len({_part(n) for n in names}) == len(names), f"round {i}: {sorted(names)}"
    os.close(w)
    forked = list(os.read(r, 100))
    os.close(r)
    assert len(forked) == len(rounds)  # every warm scan's Claude part ran in a child


def test_split_child_failure_falls_back_to_scanning_here(logs: LogHome, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.cost import scanner

    _more(logs)
    scan(logs, logs.cache)
    logs.write(".claude/projects/q/new.jsonl", [claude_line(mid="n1", rid="n", inp=3, out=4)])
    expected = strip(scan(logs, None))
    _split(monkeypatch)
    parent = os.getpid()
    real_scan_kind = scanner.scan_kind

    def failing(kind, **kw):
        if os.getpid() != parent:
            os._exit(3)  # the child dies without a word
        return real_scan_kind(kind, **kw)

    monkeypatch.setattr(scanner, "scan_kind", failing)
    assert strip(scan(logs, logs.cache)) == expected
    monkeypatch.setattr(scanner, "scan_kind", real_scan_kind)
    assert strip(scan(logs, logs.cache)) == expected


def test_no_fork_while_other_threads_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An embedding app's thread could hold a lock a forked copy would wait for forever: with
    another Python thread alive the scanner neither splits nor forks parse workers."""
    import threading

    from engine.cost import scanner

    monkeypatch.setattr(scanner, "SPLIT_MIN_INDEX_BYTES", 0)
    (tmp_path / "cost-claude-index-0000000000000001.json").write_bytes(b"{}")
    assert scanner.can_fork() == hasattr(os, "fork")
    assert scanner._splits(["claude", "codex"], tmp_path, False, 2) == hasattr(os, "fork")
    stop = threading.Event()
    t = threading.Thread(target=stop.wait)
    t.start()
    try:
        assert not scanner.can_fork()
        assert not scanner._splits(["claude", "codex"], tmp_path, False, 2)
        assert not scanner._forks([("claude", "a", 0, None, timezone.utc, False)] * 2, 1 << 40, 2)
    finally:
        stop.set()
        t.join()
    assert not scanner._splits(["claude"], tmp_path, False, 2)
    assert not scanner._splits(["claude", "codex"], tmp_path, True, 2)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork-only")
def test_ended_workers_are_collected_without_waiting() -> None:
    """_reap does not block on a worker that is still ending; a later call collects it."""

    from engine.cost import scanner

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.read(r, 1)   # ends only when told
        os._exit(0)
    os.close(r)
    t0 = time.monotonic()
    scanner._reap(pid)
    assert time.monotonic() - t0 < 1.0 and pid in scanner._unreaped
    os.write(w, b"x")
    os.close(w)
    deadline = time.monotonic() + 10
    while pid in scanner._unreaped and time.monotonic() < deadline:
        time.sleep(0.01)
        scanner._collect()
    assert pid not in scanner._unreaped
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)   # collected: no zombie left


def test_a_save_is_newer_than_every_index_even_after_the_clock_went_back(logs: LogHome,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Readers take the newest index, so a save (here a --refresh, which starts from nothing) must
    name itself newer than any index present, whatever the clock says."""
    import time as time_mod

    from engine.cost import ledger

    base(logs)
    scan(logs, logs.cache)
    d = logs.cache / "cost-usage"
    (first,) = d.glob("cost-claude-index-*.json")
    monkeypatch.setattr(ledger.time, "time_ns", lambda: 1)   # the clock set back to 1970
    logs.append(B, [claude_line(mid="m6", rid="r6", inp=1, out=1)])
    assert strip(scan(logs, logs.cache, refresh=True)) == strip(scan(logs, None))
    (second,) = d.glob("cost-claude-index-*.json")
    assert second.name > first.name
    monkeypatch.setattr(ledger.time, "time_ns", time_mod.time_ns)
    assert strip(scan(logs, logs.cache)) == strip(scan(logs, None))


def _many_projects(logs: LogHome) -> None:
    base(logs)
    for i in range(7):
        logs.write(f".claude/projects/proj{i}/s.jsonl", [claude_line(mid=f"p{i}", rid="r", inp=i + 1, out=2),
                                                         claude_line(mid="m2", rid="r2", inp=7, out=7)])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork-only")
def test_cold_scan_lists_claude_in_a_forked_process(logs: LogHome, monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    """With enough Claude projects a cold scan of both kinds lists the Claude logs in a forked
    process; the result, the stored keys and the next warm scan are those of listing here."""
    from engine.cost import scanner

    _many_projects(logs)
    monkeypatch.setattr(scanner, "LISTER_MIN_PROJECTS", 10 ** 9)   # the reference: listed here
    expected = strip(scan(logs, None))
    here = tmp_path / "here"
    scan(logs, here)
    monkeypatch.setattr(scanner, "LISTER_MIN_PROJECTS", 6)
    monkeypatch.setattr(scanner, "cpu_count", lambda: 2)
    forked: list[bool] = []
    real = scanner._claude_lister

    def spy(home, env):
        collect = real(home, env)
        forked.append(collect is not None)
        return collect

    monkeypatch.setattr(scanner, "_claude_lister", spy)
    assert strip(scan(logs, logs.cache)) == expected
    assert forked == [True]
    for kind in ("claude", "codex"):
        assert _stored_keys(logs.cache, kind) == _stored_keys(here, kind)
    assert strip(scan(logs, logs.cache)) == expected
    monkeypatch.setattr(scanner, "LISTER_MIN_PROJECTS", 100)   # few projects: no fork
    forked.clear()
    scan(logs, tmp_path / "few")
    assert forked == [False]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork-only")
def test_a_failed_lister_means_listing_here(logs: LogHome, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.cost import claude as claude_mod
    from engine.cost import scanner

    _many_projects(logs)
    monkeypatch.setattr(scanner, "LISTER_MIN_PROJECTS", 10 ** 9)   # the reference: listed here
    expected = strip(scan(logs, None))
    monkeypatch.setattr(scanner, "LISTER_MIN_PROJECTS", 6)
    monkeypatch.setattr(scanner, "cpu_count", lambda: 2)
    parent = os.getpid()
    real = claude_mod.list_claude_files

    def dies_in_child(roots):
        if os.getpid() != parent:
            raise OSError("lister broke")
        return real(roots)

    monkeypatch.setattr(claude_mod, "list_claude_files", dies_in_child)
    forked: list[bool] = []
    real_lister = scanner._claude_lister

    def spy(home, env):
        collect = real_lister(home, env)
        forked.append(collect is not None)
        return collect

    monkeypatch.setattr(scanner, "_claude_lister", spy)
    assert strip(scan(logs, logs.cache)) == expected
    assert forked == [True]
