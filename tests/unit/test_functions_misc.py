"""duration_seconds, parse_timestamp, engine functions as filters; step `accept_status` and `meta` in step scope
(needed by the warp/codebuff/groq/doubao/poe specs)."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import httpx

from engine.expr import compile_expr
from engine.functions import FUNCTIONS, duration_seconds, parse_timestamp
from engine.runner import fetch

from ..helpers import Recorder, context, run, simple_spec, write_spec


def test_duration_seconds_sums_compound_parts() -> None:
    assert duration_seconds("1m30s") == 90
    assert duration_seconds("2h") == 7200
    assert duration_seconds("1d 2h") == 93600
    assert duration_seconds("250ms") == 0.25
    assert duration_seconds(" 6S ") == 6
    assert duration_seconds("1.5s") == 1.5
    assert duration_seconds("0s") == 0
    for bad in ("30", "", "soon", "abc6s", "6x", None, 6):
        assert duration_seconds(bad) is None
    assert FUNCTIONS["duration_seconds"] is duration_seconds


def test_parse_timestamp_guesses_epoch_units_by_size() -> None:
    at = datetime(2026, 7, 1, 12, 0, tzinfo=timezone.utc)
    assert parse_timestamp(1782907200) == at
    assert parse_timestamp("1782907200") == at
    assert parse_timestamp(1782907200000) == at
    assert parse_timestamp(1782907200000000) == at
    assert parse_timestamp("2026-07-01T12:00:00Z") == at
    assert parse_timestamp("2026-07-01T12:00:00.000+00:00") == at
    assert parse_timestamp(5) == datetime(1970, 1, 1, 0, 0, 5, tzinfo=timezone.utc)
    for bad in (0, -1, True, "soon", None, {}, "2026-07-01"):
        assert parse_timestamp(bad) is None


def test_engine_functions_are_also_filters_without_shadowing_jinja() -> None:
    rows = [{"t": 1782907200}, {"x": 1}, {"t": "soon"}]
    mapped = compile_expr("rows | map('first_key', 't') | map('parse_timestamp') | select | list")({"rows": rows})
    assert mapped == [datetime(2026, 7, 1, 12, 0, tzinfo=timezone.utc)]
    assert compile_expr("[3, 1, 2] | max")({}) == 3  # Jinja's own `max` filter, not Python's max(x, ...)


def probe_spec(accept: list[int]) -> dict:
    steps = [{"id": "probe", "url": "{{ base }}/probe", "response": "text", "accept_status": accept, "retry": False},
             {"id": "again", "url": "{{ base }}/again?from={{ meta.probe.status }}",
              "when": "meta.probe.headers.get('x-limit') == '5'", "retry": False}]
    return simple_spec(steps=steps,
                       extract={"limit": {"path": 'meta.probe.headers."x-limit"', "type": "number"},
                                "status": {"path": "meta.probe.status", "type": "number"},
                                "again": {"path": "again.ok", "optional": True}},
                       usage={"primary": {"usedPercent": "limit + status / 100 + (1 if again else 0)"}},
                       errors=[{"step": "probe", "status": 403, "kind": "permission_denied"}])


def test_accept_status_makes_a_listed_status_an_answer_and_meta_is_in_step_scope(tmp_path: Path) -> None:
    def answer(status: int) -> Recorder:
        return Recorder(lambda r: httpx.Response(status, headers={"X-Limit": "5"}, text="slow down")
                        if r.url.path == "/probe" else httpx.Response(200, json={"ok": True}))

    rec = answer(429)
    outcome = run(fetch(write_spec(tmp_path, probe_spec([429, 403])), context(rec)))
    assert outcome.ok and outcome.usage["primary"]["usedPercent"] == 5 + 4.29 + 1
    assert str(rec.requests[1].url).endswith("/again?from=429")  # templates read meta too
    # Only listed statuses are answers; `errors` rules still apply to them.
    outcome = run(fetch(write_spec(tmp_path, probe_spec([429, 403])), context(answer(403))))
    assert outcome.error.kind == "permission_denied"
    outcome = run(fetch(write_spec(tmp_path, probe_spec([429])), context(answer(500))))
    assert outcome.error.kind == "provider_unavailable"
    rec = answer(429)
    outcome = run(fetch(write_spec(tmp_path, probe_spec([])), context(rec)))
    assert outcome.error.kind == "rate_limited" and len(rec.requests) == 1
