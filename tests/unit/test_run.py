"""runner.py: strategy selection, fallback, attempts, optional steps, error rules, concurrency, purity."""
from __future__ import annotations

import asyncio
import copy
import time
from pathlib import Path

import httpx

from engine.runner import fetch, fetch_many

from ..helpers import Recorder, context, run, simple_spec, write_spec


def two_strategies() -> dict:
    data = simple_spec()
    web = {"id": "web", "kind": "web", "source": "web", "modes": ["auto", "web"], "requires": ["cookie"],
           "steps": [{"id": "page", "url": "https://web.demo.test/usage"}],
           "extract": {"pct": {"path": "page.pct", "type": "number"}},
           "usage": {"primary": {"usedPercent": "pct"}}}
    data["strategies"][0]["fallback_on"] = ["auth_expired"]
    data["strategies"].append(web)
    data["inputs"]["cookie"] = {"secret": True, "from": [{"env": "DEMO_COOKIE"}]}
    data["source_modes"] = ["auto", "api", "web"]
    return data


def answer(request: httpx.Request) -> httpx.Response:
    if request.url.host == "api.demo.test":
        return httpx.Response(401, json={"error": "expired"})
    return httpx.Response(200, json={"pct": 61})


def test_falls_back_on_listed_kinds_and_records_every_attempt(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, two_strategies())
    env = {"DEMO_KEY": "sk-demo-secret-value", "DEMO_COOKIE": "session=abc123"}
    outcome = run(fetch(spec, context(Recorder(answer), env=env)))
    assert outcome.ok and outcome.source == "web" and outcome.usage["primary"]["usedPercent"] == 61
    assert [(a.strategy, a.available, a.error_kind) for a in outcome.attempts] == [
        ("api", True, "auth_expired"), ("web", True, None)]


def test_no_fallback_for_unlisted_kinds(tmp_path: Path) -> None:
    data = two_strategies()
    data["strategies"][0]["fallback_on"] = ["rate_limited"]
    env = {"DEMO_KEY": "sk-demo-secret-value", "DEMO_COOKIE": "session=abc123"}
    outcome = run(fetch(write_spec(tmp_path, data), context(Recorder(answer), env=env)))
    assert outcome.error.kind == "auth_expired" and len(outcome.attempts) == 1


def test_missing_inputs_skip_a_strategy_and_name_the_sources(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, two_strategies())
    outcome = run(fetch(spec, context(Recorder(answer), env={"DEMO_COOKIE": "session=abc123"})))
    assert outcome.ok and outcome.attempts[0].available is False
    outcome = run(fetch(spec, context(Recorder(answer), env={})))
    assert outcome.error.kind == "missing_credential"
    assert "env DEMO_KEY" in outcome.error.message and "env DEMO_COOKIE" in outcome.error.message


def test_source_mode_selects_strategies_and_unsupported_modes_fail(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, two_strategies())
    env = {"DEMO_KEY": "sk-demo-secret-value", "DEMO_COOKIE": "session=abc123"}
    outcome = run(fetch(spec, context(Recorder(answer), env=env), source="web"))
    assert [a.strategy for a in outcome.attempts] == ["web"]
    outcome = run(fetch(spec, context(Recorder(answer), env=env), source="cli"))
    assert outcome.error.kind == "unsupported" and "Source 'cli' is not supported for demo." == outcome.error.message
    ctx = context(Recorder(answer), env=env, config={"demo": {"source": "web"}})
    assert run(fetch(spec, ctx)).source == "web"


def test_optional_step_failure_leaves_null_and_when_skips(tmp_path: Path) -> None:
    steps = [{"id": "info", "url": "{{ base }}/info"},
             {"id": "extra", "url": "{{ base }}/extra", "optional": True},
             {"id": "never", "url": "{{ base }}/never", "when": "false"}]
    data = simple_spec(steps=steps, extract={"used": {"path": "info.used", "type": "number"},
                                             "bonus": {"path": "extra.bonus", "optional": True},
                                             "fallback": {"path": "extra.bonus", "default": 5}})
    data["strategies"][0]["usage"]["primary"]["windowMinutes"] = "fallback"
    rec = Recorder(lambda r: httpx.Response(200, json={"used": 10}) if r.url.path == "/info"
                   else httpx.Response(500))
    outcome = run(fetch(write_spec(tmp_path, data), context(rec)))
    assert outcome.ok and outcome.usage["primary"] == {"usedPercent": 10, "windowMinutes": 5}
    assert [r.url.path for r in rec.requests] == ["/info", "/extra", "/extra"]  # one retry, never /never


def test_body_error_rules_and_later_steps_read_earlier_ones(tmp_path: Path) -> None:
    steps = [{"id": "org", "url": "{{ base }}/org"},
             {"id": "usage", "url": "{{ base }}/orgs/{{ steps.org.id }}/usage"}]
    data = simple_spec(steps=steps, extract={"used": {"path": "usage.used", "type": "number"}},
                       errors=[{"step": "org", "when": "body.code != 0", "kind": "api_failure",
                                "message": "code {{ body.code }}: {{ body.msg }}"}])
    rec = Recorder(lambda r: httpx.Response(200, json={"code": 0, "id": "o-7"}) if r.url.path == "/org"
                   else httpx.Response(200, json={"used": 3}))
    outcome = run(fetch(write_spec(tmp_path, data), context(rec)))
    assert outcome.ok and rec.requests[1].url.path == "/orgs/o-7/usage"
    rec = Recorder(lambda r: httpx.Response(200, json={"code": 1001, "msg": "Token missing"}))
    outcome = run(fetch(write_spec(tmp_path, data), context(rec)))
    assert outcome.error.kind == "api_failure" and outcome.error.message == "code 1001: Token missing"
    assert outcome.error.step == "org" and outcome.error.strategy == "api"


def test_run_does_not_mutate_the_spec(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, two_strategies())
    before = copy.deepcopy(spec.data)
    run(fetch(spec, context(Recorder(answer), env={"DEMO_KEY": "k-1234", "DEMO_COOKIE": "c-1234"})))
    assert spec.data == before


def test_fan_out_is_concurrent_and_a_hang_does_not_block_others(tmp_path: Path) -> None:
    specs = [write_spec(tmp_path, simple_spec(f"demo{i}")) for i in range(8)]

    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.2)
        return httpx.Response(200, json={"used": 1})

    ctx = context(None, transport=httpx.MockTransport(handler))
    started = time.perf_counter()
    outcomes = run(fetch_many(specs, ctx))
    assert all(o.ok for o in outcomes) and [o.provider for o in outcomes] == [f"demo{i}" for i in range(8)]
    assert time.perf_counter() - started < 8 * 0.2  # not sequential

    async def hang_one(request: httpx.Request) -> httpx.Response:
        if request.url.host == "api.demo.test" and request.headers.get("x-hang"):
            await asyncio.sleep(30)
        return httpx.Response(200, json={"used": 2})

    hanging = simple_spec("hangs")
    hanging["strategies"][0]["steps"][0]["headers"] = {"x-hang": "1"}
    specs = [write_spec(tmp_path, hanging), write_spec(tmp_path, simple_spec("fine"))]
    outcomes = run(fetch_many(specs, context(None, transport=httpx.MockTransport(hang_one)), timeout_s=0.3))
    assert outcomes[0].error.kind == "timeout" and outcomes[1].ok
