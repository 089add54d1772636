"""steps.py and the strategy features later providers need: for_each fan-out, pagination with loop guards,
strategy `when`, templated source labels, earlier-error reporting, file and keyring inputs, date functions."""
from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest

from engine.functions import date_chunks, days, epoch, strftime, utc_midnight
from engine.runner import fetch

from ..helpers import Recorder, context, run, simple_spec, write_spec


def test_for_each_fans_out_concurrently_and_keeps_item_order(tmp_path: Path) -> None:
    steps = [{"id": "projects", "url": "{{ base }}/projects"},
             {"id": "usage", "for_each": "steps.projects.ids", "as": "pid", "url": "{{ base }}/p/{{ pid }}"}]
    data = simple_spec(steps=steps, extract={"hours": {"path": "usage[].hours", "type": "array"}},
                       compute={"total": "hours | sum"}, usage={"primary": {"usedPercent": "total"}})

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/projects":
            return httpx.Response(200, json={"ids": ["a", "b", "c"]})
        await asyncio.sleep({"a": 0.15, "b": 0.05, "c": 0.1}[request.url.path[-1]])
        return httpx.Response(200, json={"hours": {"a": 1, "b": 2, "c": 4}[request.url.path[-1]]})

    started = time.perf_counter()
    outcome = run(fetch(write_spec(tmp_path, data), context(None, transport=httpx.MockTransport(handler)),
                        want_trace=True))
    assert outcome.ok and outcome.usage["primary"]["usedPercent"] == 7
    assert time.perf_counter() - started < 0.3  # concurrent, not 0.3 s in sequence
    assert [v for n, _, v in outcome.trace.values if n == "hours"] == [[1, 2, 4]]


def test_for_each_sequential_and_item_optional_with_fatal_kinds(tmp_path: Path) -> None:
    steps = [{"id": "q", "for_each": "['x', 'bad', 'y']", "as": "item", "url": "{{ base }}/{{ item }}",
              "concurrency": 1, "item_optional": True, "fatal": ["auth_expired"], "retry": False}]
    data = simple_spec(steps=steps, extract={"vals": {"path": "q", "type": "array"}},
                       usage={"primary": {"usedPercent": "vals | select | map(attribute='v') | sum"}})
    order: list[str] = []

    def answer(status: int):  # noqa: ANN202
        def handler(r: httpx.Request) -> httpx.Response:
            order.append(r.url.path)
            return httpx.Response(status, json={}) if r.url.path == "/bad" else httpx.Response(200, json={"v": 5})
        return handler

    outcome = run(fetch(write_spec(tmp_path, data), context(Recorder(answer(500)))))
    assert outcome.ok and outcome.usage["primary"]["usedPercent"] == 10 and order == ["/x", "/bad", "/y"]
    outcome = run(fetch(write_spec(tmp_path, data), context(Recorder(answer(401)))))
    assert outcome.error.kind == "auth_expired"


def paged_spec(**paginate: object) -> dict:
    steps = [{"id": "costs", "url": "{{ base }}/costs?limit=2",
              "paginate": {"param": "page", "max_pages": 3,
                           "next": "require(body.get('next_page'), 'Pagination cursor missing.') if body.has_more else none",
                           **paginate}}]
    return simple_spec(steps=steps, extract={"amounts": {"path": "costs[].data[]", "type": "array"}},
                       usage={"primary": {"usedPercent": "amounts | sum"}})


def pages(*bodies: dict) -> Recorder:
    by_cursor = {None: bodies[0], **{b.get("cursor"): b for b in bodies[1:]}}
    return Recorder(lambda r: httpx.Response(200, json=by_cursor[r.url.params.get("page")]))


def test_pagination_follows_cursors(tmp_path: Path) -> None:
    rec = pages({"data": [1, 2], "has_more": True, "next_page": "c2"},
                {"cursor": "c2", "data": [3], "has_more": True, "next_page": "c3"},
                {"cursor": "c3", "data": [4], "has_more": False})
    outcome = run(fetch(write_spec(tmp_path, paged_spec()), context(rec)))
    assert outcome.ok and outcome.usage["primary"]["usedPercent"] == 10
    assert [str(r.url) for r in rec.requests] == ["https://api.demo.test/costs?limit=2",
                                                 "https://api.demo.test/costs?limit=2&page=c2",
                                                 "https://api.demo.test/costs?limit=2&page=c3"]


@pytest.mark.parametrize("bodies,message", [
    (({"data": [1], "has_more": True, "next_page": "c2"}, {"cursor": "c2", "data": [1], "has_more": True,
                                                           "next_page": "c2"}), "Pagination cursor repeated."),
    (({"data": [1], "has_more": True},), "Pagination cursor missing."),
    (({"data": [1], "has_more": True, "next_page": "c2"}, {"cursor": "c2", "data": [], "has_more": True,
      "next_page": "c3"}, {"cursor": "c3", "data": [], "has_more": True, "next_page": "c4"}), "more than 3 pages"),
])
def test_pagination_loop_guards(tmp_path: Path, bodies: tuple, message: str) -> None:
    outcome = run(fetch(write_spec(tmp_path, paged_spec()), context(pages(*bodies))))
    assert outcome.error.kind == "parse_failure" and outcome.error.message == message


def test_pagination_can_stop_quietly_at_the_page_cap(tmp_path: Path) -> None:
    rec = pages({"data": [1], "has_more": True, "next_page": "c2"},
                {"cursor": "c2", "data": [2], "has_more": True, "next_page": "c3"},
                {"cursor": "c3", "data": [3], "has_more": True, "next_page": "c4"})
    outcome = run(fetch(write_spec(tmp_path, paged_spec(over_max="stop")), context(rec)))
    assert outcome.ok and outcome.usage["primary"]["usedPercent"] == 6


def two_strategy_spec(**second: object) -> dict:
    data = simple_spec()
    data["inputs"]["project"] = {"from": [{"env": "DEMO_PROJECT"}]}
    data["strategies"][0].update({"source": "admin-api{{ ':project' if project else '' }}",
                                  "fallback_on": ["auth_expired", "provider_unavailable", "parse_failure"]})
    data["strategies"].append({"id": "legacy", "kind": "api", "source": "billing-api", "modes": ["auto", "api"],
                               "requires": ["token"], "steps": [{"id": "b", "url": "https://legacy.demo.test/b",
                                                                 "retry": False}],
                               "extract": {"used": {"path": "b.used", "type": "number"}},
                               "usage": {"primary": {"usedPercent": "used"}}, **second})
    return data


def test_source_label_is_a_template(tmp_path: Path) -> None:
    rec = Recorder(lambda r: httpx.Response(200, json={"used": 1}))
    env = {"DEMO_KEY": "sk-demo-secret-value", "DEMO_PROJECT": "proj_1"}
    assert run(fetch(write_spec(tmp_path, two_strategy_spec()), context(rec, env=env))).source == "admin-api:project"


def test_strategy_when_and_earlier_error_reporting(tmp_path: Path) -> None:
    def both_fail(status_admin: int):  # noqa: ANN202
        return Recorder(lambda r: httpx.Response(status_admin if r.url.host == "api.demo.test" else 500))

    data = two_strategy_spec(when="not project", report_earlier_error_unless=["auth_expired", "permission_denied"])
    spec = write_spec(tmp_path, data)
    env = {"DEMO_KEY": "sk-demo-secret-value"}
    # admin 503 then legacy 500: the admin error is reported
    outcome = run(fetch(spec, context(both_fail(503), env=env)))
    assert outcome.error.kind == "provider_unavailable" and "api.demo.test" in outcome.error.message
    assert [a.strategy for a in outcome.attempts] == ["api", "legacy"]
    # admin 401 (a rejected credential) then legacy 500: the legacy error is reported
    outcome = run(fetch(spec, context(both_fail(401), env=env)))
    assert "legacy.demo.test" in outcome.error.message
    # with a project the legacy path is not available at all
    outcome = run(fetch(spec, context(both_fail(401), env={**env, "DEMO_PROJECT": "p"})))
    assert outcome.error.kind == "auth_expired" and outcome.attempts[1].available is False


def test_file_and_keyring_input_sources(tmp_path: Path) -> None:
    from engine.inputs import resolve_inputs

    home = tmp_path / "home"
    (home / ".config" / "tool").mkdir(parents=True)
    (home / ".config" / "tool" / "creds.json").write_text(json.dumps({"default": {"authToken": " tok-1 "}}))
    (home / "broken.json").write_text("{not json")
    spec_inputs = {
        "a": {"from": [{"file": {"path": ".config/tool/creds.json", "json": "default.authToken || authToken"}}]},
        "b": {"from": [{"file": {"path": "broken.json", "json": "authToken"}}, {"default": "fallback"}]},
        "c": {"from": [{"keyring": {"service": "engine:demo", "account": "github.com"}}]},
    }
    ctx = context(None, env={}, keyring_get=lambda s, a: "kr-secret" if (s, a) == ("engine:demo", "github.com") else None)
    ctx.home = home
    r = resolve_inputs(spec_inputs, ctx, provider="demo")
    assert r.values == {"a": "tok-1", "b": "fallback", "c": "kr-secret"}
    assert r.origins["a"] == "file ~/.config/tool/creds.json" and r.origins["c"] == "keyring engine:demo"


def test_date_functions() -> None:
    now = datetime(2026, 7, 1, 12, 0, tzinfo=timezone.utc)
    start = utc_midnight(now) - days(29)
    assert epoch(start) == 1780358400 and epoch(start + days(30)) == 1782950400  # openai's documented example
    assert strftime(now, "%Y-%m-%d %H:00:00", "Asia/Shanghai") == "2026-07-01 20:00:00"
    chunks = date_chunks(start, 40, 31)
    assert [(c["days"], strftime(c["start"], "%m-%d")) for c in chunks] == [(31, "06-02"), (9, "07-03")]
