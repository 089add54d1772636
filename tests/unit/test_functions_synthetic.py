"""Generic key-guessing helpers: parse_number, fraction_percent, parse_date, duration_minutes, first_key,
find_objects, require."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from engine.errors import EngineError
from engine.expr import compile_expr, evaluate
from engine.functions import FUNCTIONS, duration_minutes, find_objects, first_key, fraction_percent, parse_date, parse_number, require


def test_parse_number_is_lenient_and_never_raises() -> None:
    assert parse_number(12) == 12.0
    assert parse_number(" 12.5 ") == 12.5
    assert parse_number("1e3") == 1000.0
    assert parse_number(".5") == 0.5
    assert parse_number(True) == 1.0
    assert parse_number("$36.00") is None
    assert parse_number("1,234") is None
    assert parse_number("1_000") is None
    assert parse_number("nan") is None
    assert parse_number("") is None
    assert parse_number(None) is None
    assert parse_number({"a": 1}) is None


def test_parse_number_money_strips_dollar_and_commas() -> None:
    assert parse_number("$36.00", money=True) == 36.0
    assert parse_number(" $1,234.50 ", money=True) == 1234.5
    assert parse_number(7, money=True) == 7.0
    assert parse_number("USD 3", money=True) is None


def test_fraction_percent() -> None:
    assert fraction_percent(0.5) == 50
    assert fraction_percent(1) == 100  # an exact 1 is a fraction
    assert fraction_percent("0.25") == 25
    assert fraction_percent(12.5) == 12.5
    assert fraction_percent(None) is None
    assert fraction_percent("n/a") is None


def test_parse_date_iso_and_epochs() -> None:
    utc = timezone.utc
    assert parse_date("2026-07-01T12:00:00Z") == datetime(2026, 7, 1, 12, tzinfo=utc)
    assert parse_date("2026-07-01T12:00:00.250Z") == datetime(2026, 7, 1, 12, 0, 0, 250000, tzinfo=utc)
    assert parse_date("2026-07-01T14:00:00+02:00") == datetime(2026, 7, 1, 12, tzinfo=utc)
    assert parse_date(1782910800) == datetime(2026, 7, 1, 13, tzinfo=utc)  # seconds (> 1e9)
    assert parse_date("1782910800000") == datetime(2026, 7, 1, 13, tzinfo=utc)  # milliseconds (> 1e12)
    assert parse_date(86400) is None  # too small to be an epoch
    assert parse_date("2026-07-01") is None  # no time and offset
    assert parse_date("2026-07-01T12:00:00") is None
    assert parse_date("soon") is None
    assert parse_date(None) is None


@pytest.mark.parametrize(
    ("text", "minutes"),
    [("5min", 5), ("5m", 5), ("5hr", 300), ("5h", 300), ("5hours", 300), ("5 Hours", 300), ("2days", 2880),
     ("2d", 2880), ("1 hour", 60), ("30 mins", 30), ("1.5h", 90), (" 7 d ", 10080)],
)
def test_duration_minutes(text: str, minutes: int) -> None:
    assert duration_minutes(text) == minutes


@pytest.mark.parametrize("text", ["junk", "", "0h", "-5m", "5s", "5w", "h", "5hm", None, 5])
def test_duration_minutes_rejects(text: object) -> None:
    assert duration_minutes(text) is None


def test_first_key_kinds() -> None:
    q = {"a": None, "b": "n/a", "c": "42", "d": "  Pro  ", "e": 5.9, "f": "$9.50", "g": {"x": 1}, "h": "",
         "i": "2026-07-01T12:00:00Z"}
    assert first_key(q, ["a", "b"]) == "n/a"  # any: first non-null
    assert first_key(q, ["a", "b", "c"], "number") == 42.0  # skips keys whose value does not convert
    assert first_key(q, ["h", "d"], "string") == "Pro"  # trimmed, blank skipped
    assert first_key(q, ["e"], "integer") == 5  # numbers truncate
    assert first_key(q, ["c"], "integer") == 42
    assert first_key(q, ["f"], "number") is None
    assert first_key(q, ["f"], "money") == 9.5
    assert first_key(q, ["b", "g"], "object") == {"x": 1}
    assert first_key(q, ["i"], "date") == datetime(2026, 7, 1, 12, tzinfo=timezone.utc)
    assert first_key(q, "c") == "42"  # one key as a string
    assert first_key(q, ["zz"]) is None
    assert first_key([q], ["c"]) is None  # not an object
    assert first_key(None, ["c"]) is None
    with pytest.raises(ValueError):
        first_key(q, ["c"], "nope")


def test_find_objects_sorted_keys_and_no_descent_into_matches() -> None:
    doc = {
        "zeta": {"limit": 1, "inner": {"limit": 99}},
        "alpha": [{"label": "none"}, {"wrap": {"used": "3"}}],
        "mid": {"used": "n/a"},
    }
    assert find_objects(doc, ["limit", "used"], "number") == [{"used": "3"}, {"limit": 1, "inner": {"limit": 99}}]
    assert find_objects(doc, ["used"]) == [{"used": "3"}, {"used": "n/a"}]  # kind any
    assert find_objects({"limit": 5}, ["limit"]) == [{"limit": 5}]  # the root itself can match
    assert find_objects("text", ["limit"]) == []
    assert find_objects(None, ["limit"]) == []


def test_require_fails_the_fetch_through_an_expression() -> None:
    assert require([1], "x") == [1]
    assert require(0, "x") == 0
    with pytest.raises(EngineError) as exc:
        require([], "Missing quota data.")
    assert exc.value.kind == "parse_failure" and exc.value.message == "Missing quota data."
    with pytest.raises(EngineError) as exc:
        evaluate(compile_expr("require(found, 'nothing', 'api_failure')"), {**FUNCTIONS, "found": None}, what="t")
    assert exc.value.kind == "api_failure"


def test_registered_in_functions() -> None:
    for name in ("parse_number", "fraction_percent", "parse_date", "duration_minutes", "first_key", "find_objects",
                 "require"):
        assert name in FUNCTIONS
