"""Cold start: `engine run openrouter --cassette …` vs `python -c "import httpx"`, side by side.

    .venv/bin/python bench/bench_startup.py [--runs 15]

Target: the engine run takes at most 2x the bare httpx import, with the engine's cache warm (validated
specs, compiled expressions, parsed cassettes: the state after the first run). The same run with the cache off
(every run validates the spec with jsonschema and compiles every expression) is shown for comparison.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from common import PY, ROOT, engine_env, side_by_side


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    engine_bin = str(Path(PY).with_name("engine"))
    cassette = str(ROOT / "fixtures" / "openrouter" / "normal.yaml")
    run = [engine_bin, "run", "openrouter", "--cassette", cassette, "--format", "json"]
    with tempfile.TemporaryDirectory() as cache:
        env = engine_env(Path(cache))
        no_cache = {**env, "ENGINE_CACHE_DIR": "off"}
        medians = side_by_side({
            "python -c pass": [PY, "-c", "pass"],
            "python -c 'import httpx'": [PY, "-c", "import httpx"],
            "engine run openrouter --cassette": run,
            "  same, engine cache off": run,
        }, args.runs, env, envs={"  same, engine cache off": no_cache})
    base = medians["python -c 'import httpx'"]
    for name, seconds in medians.items():
        print(f"{name:<36} median {seconds * 1000:7.1f} ms   x{seconds / base:4.2f} of import httpx")
    ratio = medians["engine run openrouter --cassette"] / base
    print(f"target <= 2.00x: {'PASS' if ratio <= 2 else 'FAIL'} ({ratio:.2f}x)")


if __name__ == "__main__":
    main()
