"""Generic pieces added for the litellm, llmproxy, deepgram and chutes specs: lookup (loose keys), all_objects,
split_number, range, the `amount` kind; templated extra-window ids; step when/for_each reading compute values;
a failed fan-out item stopping the items not sent yet."""
from __future__ import annotations

from pathlib import Path

import httpx

from engine.expr import compile_expr, evaluate
from engine.functions import FUNCTIONS, all_objects, first_key, int_range, lookup, split_number
from engine.normalize import build_usage
from engine.runner import fetch
from engine.validate import check_spec

from ..helpers import NOW, Recorder, context, run, simple_spec, write_spec


def test_lookup_compares_keys_loosely_and_the_first_present_key_wins() -> None:
    obj = {"resetAt": "2026-07-01T00:00:00Z", "Period-End": "2026-08-01T00:00:00Z", "limit": None, "cap": 10}
    assert lookup(obj, ["reset_at", "period_end"]) == "2026-07-01T00:00:00Z"
    assert lookup(obj, ["period_end", "reset_at"]) == "2026-08-01T00:00:00Z"
    # `limit` is present (null): `cap` is not tried, unlike first_key
    assert lookup(obj, ["limit", "cap"], "number") is None
    assert first_key(obj, ["limit", "cap"], "number") == 10
    assert lookup({"used": "n/a", "usage": 5}, ["used", "usage"], "number") is None
    assert lookup(obj, "missing") is None
    assert lookup(["not", "an", "object"], ["a"]) is None
    assert lookup({"data": {"x": 1}}, ["data"], "object") == {"x": 1}
    assert lookup({"data": [1]}, ["data"], "object") is None


def test_amount_kind_ignores_dollar_comma_and_percent() -> None:
    assert lookup({"used": "$1,250.50"}, "used", "amount") == 1250.5
    assert lookup({"pct": " 40% "}, "pct", "amount") == 40
    assert lookup({"pct": 0.25}, "pct", "amount") == 0.25
    assert first_key({"x": "12%"}, "x", "amount") == 12
    assert lookup({"x": "12 apples"}, "x", "amount") is None


def test_all_objects_lists_every_object_before_its_nested_ones_in_document_order() -> None:
    inner = {"z": 1}
    doc = {"b": {"c": inner}, "a": [inner, {"y": 2}], "n": 3}
    assert all_objects(doc) == [doc, {"c": inner}, inner, inner, {"y": 2}]
    assert all_objects([None, "x", {"k": []}]) == [{"k": []}]
    assert all_objects(None) == []


def test_split_number() -> None:
    assert split_number("4hours") == {"number": 4.0, "rest": "hours"}
    assert split_number("1.5h") == {"number": 1.5, "rest": "h"}
    assert split_number("-3d") == {"number": -3.0, "rest": "d"}
    assert split_number(".5mo") == {"number": 0.5, "rest": "mo"}
    assert split_number("30") == {"number": 30.0, "rest": ""}
    assert split_number("monthly") is None
    assert split_number(" 4h") is None
    assert split_number(4) is None


def test_range_is_a_bounded_list() -> None:
    assert int_range(3) == [0, 1, 2]
    assert int_range(1, 7, 2) == [1, 3, 5]
    assert FUNCTIONS["range"] is int_range
    assert evaluate(compile_expr("range(len(xs)) | map('string') | join(',')"), {"xs": "abc"}, what="t") == "0,1,2"


def test_extra_window_id_and_title_are_templates() -> None:
    usage = {"extra_windows": [
        {"id": "{{ top[0].name }}", "title": "{{ top[0].name | upper }}", "usedPercent": "0", "when": "top"},
        {"id": "static-id", "title": "Static", "usedPercent": "5"}]}
    out = build_usage(usage, {"top": [{"name": "gemini"}], "now": NOW}, provider="demo", now=NOW)
    assert [(w["id"], w["title"]) for w in out["extraRateWindows"]] == [("gemini", "GEMINI"), ("static-id", "Static")]


def test_validate_checks_extra_window_templates(tmp_path: Path) -> None:
    data = simple_spec(usage={"primary": {"usedPercent": "used"},
                              "extra_windows": [{"id": "{{ nope }}", "title": "T", "usedPercent": "0"}]})
    problems = check_spec(write_spec(tmp_path, data))
    assert any("undefined name 'nope'" in p for p in problems)


def _chained_spec() -> dict:
    steps = [
        {"id": "first", "url": "{{ base }}/first"},
        {"id": "second", "when": "not complete", "url": "{{ base }}/second"},
        {"id": "items", "for_each": "wanted", "as": "n", "url": "{{ base }}/item/{{ n }}"},
    ]
    return simple_spec(
        steps=steps,
        extract={"a": {"path": "first.value", "type": "number"},
                 "b": {"path": "second.value", "type": "number", "optional": True},
                 "got": {"path": "items[].v", "type": "array", "optional": True}},
        compute={"complete": "a >= 10", "wanted": "[] if b is none else range(b | int)",
                 "total": "a + (got | sum if got else 0)"},
        usage={"primary": {"usedPercent": "total"}})


def test_step_when_and_for_each_read_compute_values_over_the_steps_so_far(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, _chained_spec())
    assert check_spec(spec) == []

    def answer(values: dict[str, int]):  # noqa: ANN202
        def handler(request: httpx.Request) -> httpx.Response:
            path = request.url.path
            if path.startswith("/item/"):
                return httpx.Response(200, json={"v": int(path.rsplit("/", 1)[1]) + 1})
            return httpx.Response(200, json={"value": values[path]})
        return handler

    # `first` alone completes: `second` is skipped and `wanted` is empty (b is null): one request.
    rec = Recorder(answer({"/first": 12}))
    outcome = run(fetch(spec, context(rec)))
    assert outcome.ok and outcome.usage["primary"]["usedPercent"] == 12
    assert [r.url.path for r in rec.requests] == ["/first"]
    # Incomplete: `second` runs, its value drives the fan-out (items 0, 1, 2 -> v 1, 2, 3).
    rec = Recorder(answer({"/first": 4, "/second": 3}))
    outcome = run(fetch(spec, context(rec)))
    assert outcome.ok and outcome.usage["primary"]["usedPercent"] == 4 + 1 + 2 + 3
    assert [r.url.path for r in rec.requests] == ["/first", "/second", "/item/0", "/item/1", "/item/2"]


def test_step_templates_may_not_read_compute_values(tmp_path: Path) -> None:
    data = _chained_spec()
    data["strategies"][0]["steps"][1]["url"] = "{{ base }}/second/{{ complete }}"
    problems = check_spec(write_spec(tmp_path, data))
    assert any("undefined name 'complete'" in p for p in problems)


def test_a_fatal_item_failure_stops_items_not_sent_yet(tmp_path: Path) -> None:
    steps = [{"id": "q", "for_each": "['a', 'b', 'c']", "as": "item", "url": "{{ base }}/{{ item }}",
              "concurrency": 1, "item_optional": True, "fatal": ["auth_expired"], "retry": False}]
    data = simple_spec(steps=steps, extract={"vals": {"path": "q", "type": "array"}},
                       usage={"primary": {"usedPercent": "vals | select | length"}})
    rec = Recorder(lambda r: httpx.Response(401 if r.url.path == "/b" else 200, json={}))
    outcome = run(fetch(write_spec(tmp_path, data), context(rec)))
    assert outcome.error.kind == "auth_expired"
    assert [r.url.path for r in rec.requests] == ["/a", "/b"]
