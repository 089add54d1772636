"""Helpers added for the OpenAI Admin usage spec (each_with, group_sum) and the usage mapping's updatedAt
(kimik2 reports its own "as of" time)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from engine.errors import EngineError
from engine.expr import compile_expr, evaluate
from engine.functions import FUNCTIONS, each_with, group_sum
from engine.normalize import build_usage

NOW = datetime(2026, 7, 1, 12, 0, tzinfo=timezone.utc)


def test_each_with_copies_children_with_parent_fields() -> None:
    children = [{"v": 1}, {"v": 2, "day": "old"}]
    out = each_with(children, {"day": 7})
    assert out == [{"v": 1, "day": 7}, {"v": 2, "day": 7}]
    assert children == [{"v": 1}, {"v": 2, "day": "old"}]  # the inputs are not modified
    assert each_with(None, {"day": 7}) == []


def test_each_with_rejects_non_objects() -> None:
    with pytest.raises(ValueError):
        each_with([1], {"day": 7})
    with pytest.raises(ValueError):
        each_with([{}], "day")


def test_group_sum_groups_in_first_seen_order_and_sums() -> None:
    rows = [
        {"name": "b", "cost": 1.5, "n": 1},
        {"name": "a", "cost": 0.25, "n": 2},
        {"name": "b", "cost": None, "n": 3},
        {"name": "b", "n": 4},
    ]
    assert group_sum(rows, ["name"], ["cost", "n"]) == [
        {"name": "b", "cost": 1.5, "n": 8},
        {"name": "a", "cost": 0.25, "n": 2},
    ]
    assert group_sum(rows, "name", "n") == [{"name": "b", "n": 8}, {"name": "a", "n": 2}]
    assert group_sum([], ["name"], ["n"]) == []


def test_group_sum_composite_keys() -> None:
    rows = [{"d": 1, "k": "x", "v": 1}, {"d": 2, "k": "x", "v": 2}, {"d": 1, "k": "x", "v": 3}]
    assert group_sum(rows, ["d", "k"], ["v"]) == [{"d": 1, "k": "x", "v": 4}, {"d": 2, "k": "x", "v": 2}]


def test_group_sum_rejects_non_numbers() -> None:
    with pytest.raises(ValueError):
        group_sum([{"k": 1, "v": "5"}], ["k"], ["v"])
    with pytest.raises(ValueError):
        group_sum([{"k": 1, "v": True}], ["k"], ["v"])


def test_helpers_are_registered_and_fail_as_parse_failures() -> None:
    assert FUNCTIONS["each_with"] is each_with and FUNCTIONS["group_sum"] is group_sum
    value = evaluate(compile_expr("group_sum(each_with(rows, {'d': 1}), ['d'], ['v'])"),
                     {"rows": [{"v": 2}, {"v": 3}]}, what="t")
    assert value == [{"d": 1, "v": 5}]
    with pytest.raises(EngineError) as exc:
        evaluate(compile_expr("each_with(rows, {'d': 1})"), {"rows": [5]}, what="t")
    assert exc.value.kind == "parse_failure"


def test_usage_updated_at_defaults_to_now_and_takes_a_date() -> None:
    stamp = datetime(2026, 7, 1, 11, 30, tzinfo=timezone.utc)
    assert build_usage({}, {}, provider="p", now=NOW)["updatedAt"] == "2026-07-01T12:00:00Z"
    out = build_usage({"updatedAt": "stamp"}, {"stamp": stamp}, provider="p", now=NOW)
    assert out["updatedAt"] == "2026-07-01T11:30:00Z"
    out = build_usage({"updatedAt": "stamp"}, {"stamp": None}, provider="p", now=NOW)
    assert out["updatedAt"] == "2026-07-01T12:00:00Z"
    with pytest.raises(EngineError) as exc:
        build_usage({"updatedAt": "'yesterday'"}, {}, provider="p", now=NOW)
    assert exc.value.kind == "parse_failure"
