"""Load + validate specs, warm (validator built once): measured on the shipped specs, and on 54 specs made by
copying them under new ids (honest extrapolation to the full provider set).

    .venv/bin/python bench/bench_specs.py [--runs 20]

Target: <= 50 ms for 54 specs.
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
from engine.validate import check_spec, validator  # noqa: E402


def measure(paths: list[Path], runs: int) -> float:
    samples = []
    for _ in range(runs):
        load_mod._cache.clear()
        started = time.perf_counter()
        for path in paths:
            spec = load_mod.load_spec(path)
            problems = check_spec(spec)
            assert not problems, problems
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    shipped = load_mod.spec_paths()
    validator("spec")  # built once, as in a long-running process
    measure(shipped, 2)  # warm: compiled expressions cached, as after the first validation
    real = measure(shipped, args.runs)
    with tempfile.TemporaryDirectory() as tmp:
        copies = []
        for i in range(54):
            src = shipped[i % len(shipped)]
            dst = Path(tmp) / f"copy{i}.yaml"
            dst.write_text(src.read_text().replace(f"id: {src.stem}\n", f"id: copy{i}\n", 1))
            copies.append(dst)
        measure(copies, 2)
        full = measure(copies, args.runs)
    print(f"{len(shipped)} shipped specs: median {real * 1000:.1f} ms ({real / len(shipped) * 1000:.2f} ms/spec)")
    print(f"54 specs (copies): median {full * 1000:.1f} ms; target <= 50 ms: {'PASS' if full <= 0.05 else 'FAIL'}")


if __name__ == "__main__":
    main()
