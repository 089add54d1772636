#!/usr/bin/env python3
"""Benchmark `engine cost` against ccusage 20 on a generated session-log corpus.

    .venv/bin/python bench/bench_cost.py                     # 500MB corpus, 3 runs each
    .venv/bin/python bench/bench_cost.py --size 50MB --runs 5 --skip-ccusage

Generates (or reuses) a fake HOME with /work/shared/tools/gen_cost_logs.py, then measures in
one run, each scan in a fresh subprocess so peak RSS is that scan's alone:

* our cold scan (empty cache), warm re-scan (nothing changed), re-scan after one new Claude
  and one new Codex session were added;
* ccusage@20.0.24 (`npm install` into the bench dir) `daily --offline --json` with HOME=corpus;

and prints medians, ratios, and the token totals of both next to the generator's manifest.
Peak memory = the largest sum of PSS (and, for reference, of RSS) over the process tree, sampled
every 5 ms, so the pool workers and ccusage's node wrapper + native binary are all counted; PSS
counts pages shared by forked workers once.  Files are in the OS page
cache for every run (the corpus was just written/read), so "cold" means "no scan cache".
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
_GEN_CANDIDATES = (Path(__file__).resolve().parents[2] / "shared" / "tools" / "gen_cost_logs.py",  # beside the checkout
                   Path("/work/shared/tools/gen_cost_logs.py"))
GEN = next((p for p in _GEN_CANDIDATES if p.exists()), _GEN_CANDIDATES[0])
# new corpora end yesterday, so that `engine cost --days N` on today's clock covers them
END_DATE = (datetime.now(timezone.utc).date() - timedelta(days=1)).isoformat()


# --------------------------------------------------------------------------- child (one scan)

def child(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(REPO))
    from datetime import datetime, timezone

    t0 = time.perf_counter()
    from engine.cost import scan_cost

    t1 = time.perf_counter()
    env = json.loads(args.env)
    payloads = scan_cost(["codex", "claude"], days=args.days, home=Path(args.home), env=env,
                         now=datetime.fromisoformat(args.now), tz=timezone.utc,
                         cache_dir=Path(args.cache) if args.cache else None)
    t2 = time.perf_counter()
    print(json.dumps({"import_s": t1 - t0, "scan_s": t2 - t1,
                      "totals": {p["provider"]: p.get("totals", {}) for p in payloads}}))


# --------------------------------------------------------------------------- measuring

def _children(pid: int) -> list[int]:
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out.extend(int(x) for x in f.read().split())
    except OSError:
        pass
    return out


def _tree_mem_kb(pid: int) -> tuple[int, int]:
    """(sum of PSS, sum of RSS) over the process tree; PSS splits pages shared between a
    forked pool's processes instead of counting them once per process."""
    pss = rss = 0
    stack, seen = [pid], set()
    while stack:
        p = stack.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1])
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1])
                        break
        except OSError:
            continue
        stack.extend(_children(p))
    return pss, rss


def _cpu_busy(interval: float) -> float:
    """Share of all CPUs busy over ``interval`` seconds (from /proc/stat; 0.0 if unavailable)."""
    def snap() -> list[int]:
        with open("/proc/stat") as f:
            return [int(x) for x in f.readline().split()[1:9]]
    try:
        a = snap()
        time.sleep(interval)
        b = snap()
    except (OSError, ValueError):
        return 0.0
    d = [y - x for x, y in zip(a, b)]
    total = sum(d)
    return (total - d[3] - d[4]) / total if total else 0.0


def wait_quiet(max_wait: float, threshold: float = 0.08) -> float:
    """Wait (up to ``max_wait`` s) until other load leaves the CPUs idle; returns the last busy share."""
    deadline = time.monotonic() + max_wait
    while True:
        busy = _cpu_busy(1.0)
        if busy < threshold or time.monotonic() >= deadline:
            return busy


def measure(cmd: list[str], env: dict[str, str], memory: bool = False) -> dict:
    """Run ``cmd``; its wall time, or (``memory``) its process tree's peak memory.

    The two are measured in separate runs: the 5 ms sampler reading every process's
    ``smaps_rollup`` costs CPU itself (~0.2 s of ccusage's wall time, ~0.5 s of ours, which
    keeps both cores busy), so a sampled run's wall time is not reported.
    """
    peak = [0, 0]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            pss, rss = _tree_mem_kb(proc.pid)
            peak[0], peak[1] = max(peak[0], pss), max(peak[1], rss)
            time.sleep(0.005)

    th = threading.Thread(target=sample, daemon=True)
    if memory:
        th.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    done.set()
    if memory:
        th.join()
    if proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{err.decode()[-2000:]}")
    r = {"stdout": out.decode()}
    if memory:
        r.update(peak_pss_mb=peak[0] / 1024, peak_rss_mb=peak[1] / 1024)
    else:
        r["wall_s"] = wall
    return r


def ours(home: Path, cache: Path | None, days: int, env_extra: dict | None = None) -> dict:
    """The scan alone (``scan_cost`` in a fresh interpreter, clock at the corpus's end): its own
    time and the totals."""
    manifest = json.loads((home / "cost-corpus-manifest.json").read_text())
    now = f"{date.fromisoformat(manifest['end_date']) + timedelta(days=1)}T12:00:00+00:00"
    cmd = [sys.executable, __file__, "--child", "--home", str(home), "--days", str(days), "--now", now,
           "--env", json.dumps(env_extra or {})]
    if cache is not None:
        cmd += ["--cache", str(cache)]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home)}
    r = measure(cmd, env)
    r.update(json.loads(r.pop("stdout")))
    return r


def cli_days(manifest: dict, home: Path) -> int:
    """`--days` for the real CLI (real clock): a window from today back past the corpus's first day."""
    first = date.fromisoformat(manifest["end_date"]) - timedelta(days=int(manifest["days"]) - 1)
    days = (datetime.now(timezone.utc).date() - first).days + 2
    if days > 365:
        raise SystemExit(f"the corpus starts on {first}, more than 365 days ago: `engine cost --days` cannot "
                         f"cover it; delete {home} to generate it again")
    return days


def engine_cli(home: Path, cache: Path, days: int, memory: bool = False) -> dict:
    """What a user or a frontend runs: `engine cost --format json` (console script, real clock)."""
    exe = Path(sys.executable).parent / "engine"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "ENGINE_CACHE_DIR": str(cache),
           "TZ": "UTC"}
    r = measure([str(exe), "cost", "--format", "json", "--days", str(days)], env, memory=memory)
    r["totals"] = {p["provider"]: p.get("totals", {}) for p in json.loads(r.pop("stdout"))}
    return r


def ccusage(bench: Path, home: Path, version: str, memory: bool = False) -> dict:
    exe = bench / "npm" / "node_modules" / ".bin" / "ccusage"
    if not exe.exists():
        (bench / "npm").mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", f"ccusage@{version}"], cwd=bench / "npm",
                       check=True, capture_output=True, timeout=600)
    xdg = bench / "xdg"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
           "XDG_CONFIG_HOME": str(xdg / "config"), "XDG_CACHE_HOME": str(xdg / "cache"), "NO_COLOR": "1"}
    r = measure([str(exe), "daily", "--offline", "--json"], env, memory=memory)
    r["totals"] = json.loads(r.pop("stdout"))["totals"]
    return r


# --------------------------------------------------------------------------- corpus

def corpus(bench: Path, size: str, seed: int) -> Path:
    home = bench / f"corpus-{size}-s{seed}"
    if (home / "cost-corpus-manifest.json").exists():
        return home
    if home.exists():
        shutil.rmtree(home)
    print(f"generating {size} corpus in {home} ...", file=sys.stderr)
    subprocess.run([sys.executable, str(GEN), "--home", str(home), "--size", size, "--seed", str(seed),
                    "--end-date", END_DATE, "--days", "90"], check=True, stdout=subprocess.DEVNULL)
    return home


def new_sessions(bench: Path, end_date: str) -> dict[str, tuple[Path, str]]:
    """New sessions for the rescans, from a second corpus (another seed) of one day's sessions dated
    like the big corpus's last day: the median-size Claude and Codex session of that day (a
    typical new session: ``claude``, ``codex``), and its largest Codex session (``codex_large``,
    near the biggest of the big corpus).  kind -> (source, target relative to the corpus HOME).
    (Earlier versions took a 400 KB corpus, whose single Codex session -- 3.8 MB, above the big
    corpus's 99th percentile -- then stood for "one new session"; it is the large one now.)"""
    extra = bench / f"extra-day-{end_date}"
    if not (extra / "cost-corpus-manifest.json").exists():
        if extra.exists():
            shutil.rmtree(extra)
        subprocess.run([sys.executable, str(GEN), "--home", str(extra), "--size", "24MB", "--seed", "4242",
                        "--end-date", end_date, "--days", "1", "--archived-share", "0", "--config-claude-share", "0",
                        "--resume-rate", "0", "--subagent-rate", "0"], check=True, stdout=subprocess.DEVNULL)
    claude = sorted((extra / ".claude" / "projects").rglob("*.jsonl"), key=lambda p: (p.stat().st_size, p.name))
    codex = sorted((extra / ".codex" / "sessions").rglob("*.jsonl"), key=lambda p: (p.stat().st_size, p.name))
    pick_claude, pick_codex, large_codex = claude[len(claude) // 2], codex[len(codex) // 2], codex[-1]
    return {"claude": (pick_claude, str(Path(".claude/projects/-bench-new") / pick_claude.name)),
            "codex": (pick_codex, str(pick_codex.relative_to(extra))),
            "codex_large": (large_codex, str(large_codex.relative_to(extra)))}


GROW_BYTES = 256 << 10


def grow_targets(home: Path) -> list[Path]:
    """A median-size Claude and Codex session of the corpus: the ones the "grow" run appends to."""
    out = []
    for sub in (".claude/projects", ".codex/sessions"):
        files = sorted((home / sub).rglob("*.jsonl"), key=lambda p: (p.stat().st_size, str(p)))
        out.append(files[len(files) // 2])
    return out


_trash: list[Path] = []


def clear(path: Path) -> None:
    """Make ``path`` absent without deleting anything now: it is renamed aside and deleted by
    :func:`empty_trash` between measurements.  (On this ext4, mounted with ``discard``, freeing
    blocks issues TRIM work at the next journal commit; deleting the old cache right before a
    cold run would bill that to the run.)"""
    if path.exists():
        aside = path.with_name(f"{path.name}.trash-{len(_trash)}-{os.getpid()}")
        path.rename(aside)
        _trash.append(aside)


def empty_trash(settle: float = 1.0) -> None:
    while _trash:
        shutil.rmtree(_trash.pop(), ignore_errors=True)
    os.sync()
    time.sleep(settle)


def _restore(cache: Path, snapshot: Path) -> None:
    clear(cache)
    shutil.copytree(snapshot, cache)
    empty_trash(0.3)   # (and the copy's own writes flushed, before the next measurement)


def rescans(home: Path, cache: Path, snapshot: Path, days: int, adds: dict[str, tuple[Path, str]]) -> dict:
    """Scan work after each change, each time from the same warm cache (``snapshot``)."""
    out = {}
    for name, kinds in (("new_claude", ["claude"]), ("new_codex", ["codex"]), ("new_both", ["claude", "codex"]),
                        ("new_codex_large", ["codex_large"])):
        _restore(cache, snapshot)
        placed = []
        try:
            for kind in kinds:
                src, rel = adds[kind]
                (home / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(src, home / rel)
                placed.append(home / rel)
            out[name] = ours(home, cache, days)
        finally:
            for p in placed:
                p.unlink()
            if (home / ".claude/projects/-bench-new").exists():
                (home / ".claude/projects/-bench-new").rmdir()
    # an active session grows: append ~256 KiB of complete lines (its own last ones again) to a
    # Claude and a Codex session, then put the files back as they were (bytes and mtime)
    _restore(cache, snapshot)
    saved = []
    try:
        for path in grow_targets(home):
            st = path.stat()
            data = path.read_bytes()
            cut = data.rfind(b"\n", 0, max(0, len(data) - GROW_BYTES)) + 1
            saved.append((path, st.st_size, st.st_atime_ns, st.st_mtime_ns))
            with open(path, "ab") as f:
                f.write(data[cut:])
        out["grow"] = ours(home, cache, days)
    finally:
        for path, size, atime, mtime in saved:
            with open(path, "r+b") as f:
                f.truncate(size)
            os.utime(path, ns=(atime, mtime))
    _restore(cache, snapshot)
    return out


# --------------------------------------------------------------------------- main

def med(xs: list[float]) -> float:
    return statistics.median(xs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--home", help=argparse.SUPPRESS)
    ap.add_argument("--cache", help=argparse.SUPPRESS)
    ap.add_argument("--env", default="{}", help=argparse.SUPPRESS)
    ap.add_argument("--now", help=argparse.SUPPRESS)
    ap.add_argument("--days", type=int, default=120)
    ap.add_argument("--size", default="500MB")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--bench-dir", type=Path, default=Path("/tmp/engine-cost-bench"))
    ap.add_argument("--ccusage-version", default="20.0.24")
    ap.add_argument("--skip-ccusage", action="store_true")
    ap.add_argument("--quiet-wait", type=float, default=0.0, metavar="S",
                    help="before each run, wait up to S seconds for other CPU load to stop (shared machines)")
    args = ap.parse_args()
    if args.child:
        child(args)
        return

    bench = args.bench_dir
    bench.mkdir(parents=True, exist_ok=True)
    home = corpus(bench, args.size, args.seed)
    manifest = json.loads((home / "cost-corpus-manifest.json").read_text())
    adds = new_sessions(bench, manifest["end_date"])
    cache = bench / "scan-cache"
    snapshot = bench / "scan-cache-warm"
    print(f"corpus {home}: {manifest['total_bytes'] / 2**20:.0f} MiB, "
          f"{manifest['stats']['claude_files'] + manifest['stats']['codex_files']} files; new sessions: "
          + ", ".join(f"{k} {src.stat().st_size / 1024:.0f} KiB" for k, (src, _) in adds.items())
          + f"; runs={args.runs}", file=sys.stderr)

    days_cli = cli_days(manifest, home)
    res: dict[str, list[dict]] = {k: [] for k in ("cold", "warm", "new_claude", "new_codex", "new_both",
                                                   "new_codex_large", "grow",
                                                   "cli_cold", "cli_warm", "ccusage", "mem_cli", "mem_ccusage")}
    background: list[float] = []
    for i in range(args.runs):
        background.append(wait_quiet(args.quiet_wait) if args.quiet_wait > 0 else _cpu_busy(0.5))
        # scan work (scan_cost alone): cold, warm, after an append
        clear(cache)
        empty_trash()
        res["cold"].append(ours(home, cache, args.days))
        res["warm"].append(ours(home, cache, args.days))
        clear(snapshot)
        shutil.copytree(cache, snapshot)
        for name, r in rescans(home, cache, snapshot, args.days, adds).items():
            res[name].append(r)
        # wall time of the real command next to ccusage's
        if args.quiet_wait > 0:
            wait_quiet(args.quiet_wait)
        clear(cache)
        empty_trash()
        res["cli_cold"].append(engine_cli(home, cache, days_cli))
        if not args.skip_ccusage:
            res["ccusage"].append(ccusage(bench, home, args.ccusage_version))
        res["cli_warm"].append(engine_cli(home, cache, days_cli))
        # peak memory, in runs of their own (the sampler costs CPU)
        clear(cache)
        empty_trash()
        res["mem_cli"].append(engine_cli(home, cache, days_cli, memory=True))
        if not args.skip_ccusage:
            res["mem_ccusage"].append(ccusage(bench, home, args.ccusage_version, memory=True))
        print(f"run {i + 1}/{args.runs} done", file=sys.stderr)
    clear(cache)
    clear(snapshot)
    empty_trash(0)
    same_roots = ours(home, None, args.days, {"CLAUDE_CONFIG_DIR": str(home / ".claude")})

    def m(runs: str, key: str) -> float:
        return med([r[key] for r in res[runs]])

    print(f"\n## engine cost vs ccusage {args.ccusage_version} — {args.size} corpus, median of {args.runs}\n")
    print("CPU busy with other work just before each run: "
          + ", ".join(f"{b:.0%}" for b in background) + " (timings are only comparable on an idle machine)\n")
    print("| run | scan work (s) | wall (s) | peak PSS, process tree (MiB) | peak RSS sum (MiB) |")
    print("|---|---:|---:|---:|---:|")
    print(f"| engine cold (empty cache): `engine cost --format json` | {m('cold', 'scan_s'):.3f} | "
          f"{m('cli_cold', 'wall_s'):.3f} | {m('mem_cli', 'peak_pss_mb'):.0f} | {m('mem_cli', 'peak_rss_mb'):.0f} |")
    print(f"| engine warm (nothing changed) | {m('warm', 'scan_s'):.3f} | {m('cli_warm', 'wall_s'):.3f} | | |")
    kib = {k: src.stat().st_size / 1024 for k, (src, _) in adds.items()}
    print(f"| engine after one new Claude session ({kib['claude']:.0f} KiB) | {m('new_claude', 'scan_s'):.3f} | | | |")
    print(f"| engine after one new Codex session ({kib['codex']:.0f} KiB) | {m('new_codex', 'scan_s'):.3f} | | | |")
    print(f"| engine after one new Claude and one new Codex session | {m('new_both', 'scan_s'):.3f} | | | |")
    print(f"| engine after one new large Codex session ({kib['codex_large'] / 1024:.1f} MiB) | "
          f"{m('new_codex_large', 'scan_s'):.3f} | | | |")
    print(f"| engine after a Claude and a Codex session grew by {GROW_BYTES >> 10} KiB each | "
          f"{m('grow', 'scan_s'):.3f} | | | |")
    if res["ccusage"]:
        print(f"| ccusage daily --offline --json | — | {m('ccusage', 'wall_s'):.3f} | "
              f"{m('mem_ccusage', 'peak_pss_mb'):.0f} | {m('mem_ccusage', 'peak_rss_mb'):.0f} |")
    cold_s = m("cold", "scan_s")
    one = max(m("new_claude", "scan_s"), m("new_codex", "scan_s"))
    print(f"\nscan work: warm / cold = {m('warm', 'scan_s') / cold_s:.3%} ({m('warm', 'scan_s') * 1000:.1f} ms); "
          f"one new session / cold = {one / cold_s:.2%} ({one * 1000:.1f} ms, the slower of Claude and Codex); "
          f"two new sessions / cold = {m('new_both', 'scan_s') / cold_s:.2%}; "
          f"one new large Codex session / cold = {m('new_codex_large', 'scan_s') / cold_s:.2%}; "
          f"two sessions grown / cold = {m('grow', 'scan_s') / cold_s:.2%}")
    if res["ccusage"]:
        ratios = [a["wall_s"] / b["wall_s"] for a, b in zip(res["cli_cold"], res["ccusage"])]
        print(f"engine cold wall / ccusage wall = {m('cli_cold', 'wall_s') / m('ccusage', 'wall_s'):.2f} "
              f"(per run, side by side: {', '.join(f'{r:.2f}' for r in ratios)}); "
              f"peak PSS engine cold / ccusage = {m('mem_cli', 'peak_pss_mb') / m('mem_ccusage', 'peak_pss_mb'):.2f} "
              f"(RSS sums: {m('mem_cli', 'peak_rss_mb') / m('mem_ccusage', 'peak_rss_mb'):.2f})")
    cli_t = res["cli_cold"][0]["totals"]
    scan_t = res["cold"][0]["totals"]
    same = all(cli_t[k].get(f) == scan_t[k].get(f) for k in scan_t for f in ("inputTokens", "outputTokens",
                                                                             "cacheReadTokens", "totalTokens"))
    print(f"`engine cost` CLI totals equal the scan's: {'yes' if same else 'NO'}")

    # token totals
    t = res["cold"][0]["totals"]
    tb = manifest["totals_by_root"]
    cl_roots = [r for r in tb if "claude" in r]
    cx_roots = [r for r in tb if "codex" in r]
    man_claude = {k: sum(tb[r][k] for r in cl_roots) for k in ("input_tokens", "cache_read_input_tokens",
                                                              "cache_creation_input_tokens", "output_tokens_last_wins")}
    man_codex = {k: sum(tb[r][k] for r in cx_roots) for k in ("input_tokens", "cached_input_tokens", "output_tokens")}
    print("\n### token totals (whole corpus)\n")
    print("| | input | cache read | cache write | output |")
    print("|---|---:|---:|---:|---:|")
    print(f"| manifest Claude (both roots) | {man_claude['input_tokens']} | {man_claude['cache_read_input_tokens']} | "
          f"{man_claude['cache_creation_input_tokens']} | {man_claude['output_tokens_last_wins']} |")
    c = t["claude"]
    print(f"| engine Claude | {c['inputTokens']} | {c['cacheReadTokens']} | {c['cacheCreationTokens']} | {c['outputTokens']} |")
    print(f"| manifest Codex (input incl. cached) | {man_codex['input_tokens']} | {man_codex['cached_input_tokens']} | — | "
          f"{man_codex['output_tokens']} |")
    x = t["codex"]
    print(f"| engine Codex | {x['inputTokens']} | {x.get('cacheReadTokens', 0)} | — | {x['outputTokens']} |")
    if res["ccusage"]:
        cc = res["ccusage"][0]["totals"]
        s = same_roots["totals"]
        ours_cc = {"inputTokens": s["claude"]["inputTokens"] + s["codex"]["inputTokens"] - s["codex"].get("cacheReadTokens", 0),
                   "cacheReadTokens": s["claude"]["cacheReadTokens"] + s["codex"].get("cacheReadTokens", 0),
                   "cacheCreationTokens": s["claude"]["cacheCreationTokens"],
                   "outputTokens": s["claude"]["outputTokens"] + s["codex"]["outputTokens"]}
        print("\nccusage reads only ~/.claude/projects (not ~/.config/claude/projects) and reports Codex input "
              "without the cached part; engine re-run with CLAUDE_CONFIG_DIR=~/.claude and the same convention:\n")
        print("| | input (non-cached) | cache read | cache write | output | cost USD |")
        print("|---|---:|---:|---:|---:|---:|")
        print(f"| ccusage | {cc['inputTokens']} | {cc['cacheReadTokens']} | {cc['cacheCreationTokens']} | "
              f"{cc['outputTokens']} | {cc['totalCost']:.2f} |")
        our_cost = s["claude"].get("totalCost", 0) + s["codex"].get("totalCost", 0)
        print(f"| engine | {ours_cc['inputTokens']} | {ours_cc['cacheReadTokens']} | {ours_cc['cacheCreationTokens']} | "
              f"{ours_cc['outputTokens']} | {our_cost:.2f} |")
        same = all(ours_cc[k] == cc[k] for k in ours_cc)
        print(f"\ntoken totals identical: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
