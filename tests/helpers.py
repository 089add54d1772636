"""Small builders for unit tests: temp specs, fake transports, contexts."""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import httpx
import yaml

from engine.context import RunContext
from engine.load import Spec, load_spec

NOW = datetime(2026, 7, 1, 12, 0, tzinfo=timezone.utc)


def write_spec(tmp_path: Path, data: dict[str, Any], name: str | None = None) -> Spec:
    path = tmp_path / f"{name or data['id']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_spec(path)


def simple_spec(pid: str = "demo", *, steps: list[dict[str, Any]] | None = None, **strategy: Any) -> dict[str, Any]:
    base = {
        "id": "api", "kind": "api", "source": "api", "modes": ["auto", "api"], "requires": ["token"],
        "steps": steps if steps is not None else [
            {"id": "info", "url": "{{ base }}/info", "auth": {"type": "bearer", "token": "{{ token }}"}}],
        "extract": {"used": {"path": "info.used", "type": "number"}},
        "usage": {"primary": {"usedPercent": "used"}},
    }
    base.update(strategy)
    return {
        "id": pid, "name": pid.title(), "cli_name": pid, "source_modes": ["auto", "api"],
        "inputs": {"token": {"secret": True, "from": [{"env": "DEMO_KEY"}]},
                   "base": {"policy": "https-or-loopback", "from": [{"env": "DEMO_URL"}, {"default": "https://api.demo.test"}]}},
        "strategies": [base],
    }


class Recorder:
    """An httpx handler that answers from a function and records requests and sleeps."""

    def __init__(self, answer: Callable[[httpx.Request], httpx.Response]) -> None:
        self.answer = answer
        self.requests: list[httpx.Request] = []
        self.sleeps: list[float] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answer(request)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


def context(handler: Any, env: dict[str, str] | None = None, transport: Any = None, **kw: Any) -> RunContext:
    return RunContext(
        env=env if env is not None else {"DEMO_KEY": "sk-demo-secret-value"},
        home=Path("/nonexistent-home"),
        clock=lambda: NOW,
        tz=timezone.utc,
        transport=transport or httpx.MockTransport(handler),
        **{"sleep": getattr(handler, "sleep", None) or _no_sleep, **kw},
    )


async def _no_sleep(seconds: float) -> None:
    return None


def run(coro: Any) -> Any:
    return asyncio.run(coro)
