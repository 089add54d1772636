"""Load + validate every spec: cold (parse YAML, JSON Schema, semantic checks; validator built once) and warm
(the compiled-spec cache the CLI uses: a validated spec is served from its marshal entry, keyed by the file's
hash). Measured on the shipped specs and on 54 specs made by copying them under new ids.

    .venv/bin/python bench/bench_specs.py [--runs 20]

Target: <= 50 ms for 54 specs, warm.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import load as load_mod  # noqa: E402
from engine.validate import check_spec, load_valid, validator  # noqa: E402


def cold(paths: list[Path], runs: int) -> float:
    samples = []
    for _ in range(runs):
        load_mod._cache.clear()
        started = time.perf_counter()
        for path in paths:
            assert not check_spec(load_mod.load_spec(path))
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def warm(paths: list[Path], runs: int, cache: Path) -> float:
    for path in paths:
        load_valid(path, cache)  # fill the cache
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        for path in paths:
            load_valid(path, cache)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    shipped = load_mod.spec_paths()
    validator("spec")  # built once, as in a long-running process
    cold(shipped, 2)  # compiled expressions cached in-process, as after the first validation
    with tempfile.TemporaryDirectory() as tmp:
        copies = []
        for i in range(54):
            src = shipped[i % len(shipped)]
            dst = Path(tmp) / f"copy{i}.yaml"
            dst.write_text(src.read_text().replace(f"id: {src.stem}\n", f"id: copy{i}\n", 1))
            copies.append(dst)
        rows = [(f"{len(shipped)} shipped specs", shipped), ("54 specs (copies)", copies)]
        for label, paths in rows:
            c = cold(paths, max(3, args.runs // 4))
            w = warm(paths, args.runs, Path(tmp) / f"cache-{len(paths)}")
            print(f"{label:<22} cold (parse+validate) median {c * 1000:7.1f} ms ({c / len(paths) * 1000:.2f} ms/spec)"
                  f"   warm (cached) median {w * 1000:6.1f} ms ({w / len(paths) * 1000:.3f} ms/spec)")
        print(f"target: 54 specs warm <= 50 ms: {'PASS' if w <= 0.05 else 'FAIL'}")


if __name__ == "__main__":
    main()
