"""expr.py: engine functions and the sandbox."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from engine.errors import EngineError
from engine.expr import compile_expr, evaluate
from engine.functions import _Helpers, fixed, grouped, iso, percent, plain_number, round_half_up, sort_by, url_path_or, usd, used_from_remaining, window_text


def test_percent_family() -> None:
    assert percent(5, 20) == 25 and percent(1, 0) is None and percent(None, 3) is None
    assert used_from_remaining(25, 100) == 75 and used_from_remaining(1, 0) is None
    assert percent("12.5", "50") == 25


def test_formatting() -> None:
    assert usd(1234) == "$1,234.00" and usd(-4.5) == "-$4.50"
    assert fixed(1234.5) == "1234.50" and grouped(42500) == "42,500"
    assert plain_number(12) == "12" and plain_number(12.5) == "12.50"
    assert window_text(300) == "5 hours window" and window_text(1440) == "1 day window" and window_text(7) == "7 minutes window"


def test_round_half_up_is_not_bankers() -> None:
    assert round_half_up(2.5) == 3 and round_half_up(-2.5) == -3 and round_half_up(0.125, 2) == 0.13


def test_dates() -> None:
    assert iso("2026-07-01T09:41:05.123Z") == datetime(2026, 7, 1, 9, 41, 5, 123000, tzinfo=timezone.utc)
    assert iso("2026-07-01T09:41:05") == datetime(2026, 7, 1, 9, 41, 5, tzinfo=timezone.utc)


@pytest.mark.parametrize("now,expected", [
    (datetime(2026, 7, 1, 12, 0, tzinfo=timezone.utc), datetime(2026, 7, 2, 5, 0, tzinfo=timezone.utc)),   # CDT
    (datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc), datetime(2026, 1, 16, 6, 0, tzinfo=timezone.utc)),  # CST
    (datetime(2026, 7, 2, 5, 0, tzinfo=timezone.utc), datetime(2026, 7, 3, 5, 0, tzinfo=timezone.utc)),    # at midnight
])
def test_next_midnight(now: datetime, expected: datetime) -> None:
    assert _Helpers(now).next_midnight("America/Chicago") == expected


def test_url_path_or_and_sort_by() -> None:
    assert url_path_or("https://h.test", "api/x") == "https://h.test/api/x"
    assert url_path_or("https://h.test/", "api/x") == "https://h.test/api/x"
    assert url_path_or("https://h.test/custom", "api/x") == "https://h.test/custom"
    items = [{"m": None, "i": 0}, {"m": 300, "i": 1}, {"m": 60, "i": 2}]
    assert [i["i"] for i in sort_by(items, "m")] == [2, 1, 0]


def test_sandbox_refuses_unsafe_access_and_undefined_names() -> None:
    with pytest.raises(EngineError) as exc:
        evaluate(compile_expr("x.__class__.__mro__"), {"x": 1}, what="t")
    assert exc.value.kind == "spec_invalid"
    with pytest.raises(EngineError) as exc:
        evaluate(compile_expr("nope + 1"), {}, what="t")
    assert exc.value.kind == "spec_invalid" and "nope" in exc.value.message
    with pytest.raises(EngineError) as exc:
        evaluate(compile_expr("1 / x"), {"x": 0}, what="t")
    assert exc.value.kind == "parse_failure"
