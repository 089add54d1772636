"""Shared helpers for the benchmarks: side-by-side timing with medians."""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def time_cmd(argv: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=ROOT)
    return time.perf_counter() - started


def side_by_side(commands: dict[str, list[str]], runs: int, env: dict[str, str] | None = None,
                 envs: dict[str, dict[str, str]] | None = None) -> dict[str, float]:
    """Interleave the commands run by run (so machine noise hits all alike); return the median seconds of each.
    `envs` gives a command its own environment (default `env`)."""
    envs = envs or {}
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for name, argv in commands.items():  # warm-up: page cache, .pyc files
        time_cmd(argv, envs.get(name, env))
    for _ in range(runs):
        for name, argv in commands.items():
            samples[name].append(time_cmd(argv, envs.get(name, env)))
    return {name: statistics.median(values) for name, values in samples.items()}


def engine_env(cache_dir: Path) -> dict[str, str]:
    """The environment of a user's shell: bytecode caching on (some agent shells set PYTHONDONTWRITEBYTECODE,
    which would make every run recompile the engine's modules), the engine cache in `cache_dir`."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["ENGINE_CACHE_DIR"] = str(cache_dir)
    return env
