"""Additions made for the bedrock and copilot specs: url_host(), typed `{$expr}` JSON body values, pagination
cursors in the JSON body (signed), `on_invalid: absent` endpoint inputs, and keyring accounts templated over
earlier inputs."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.expr import run_globals
from engine.functions import url_host
from engine.inputs import resolve_inputs
from engine.request import render_step
from engine.runner import fetch
from engine.validate import check_spec

from ..helpers import NOW, Recorder, context, run, simple_spec, write_spec


@pytest.mark.parametrize("raw,host", [
    ("https://OctoCorp.GHE.com/login", "octocorp.ghe.com"),
    ("  octocorp.ghe.com  ", "octocorp.ghe.com"),
    (".GitHub.com.", "github.com"),
    ("http://ghe.local:8443/some/path?q=1", "ghe.local:8443"),
    ("https://user:pw@evil.example.com/x", "evil.example.com"),
    ("ghe.local:99999", "ghe.local:99999"),  # an invalid port keeps the authority text
    ("https://[fe80::1/login", "[fe80::1"),  # unparsable: the text up to the first slash
    ("", None), ("   ", None), (None, None), ("https://", None),
])
def test_url_host(raw: Any, host: str | None) -> None:
    assert url_host(raw) == host


def variables(**extra: Any) -> dict[str, Any]:
    return {**run_globals(NOW), **extra}


def test_expr_object_in_a_json_body_keeps_its_type() -> None:
    step = {"id": "q", "method": "POST", "url": "https://api.demo.test/q",
            "json": {"Start": {"$expr": "epoch(now - days(1))"}, "Text": "{{ 1 + 2 }}", "Flag": True,
                     "List": {"$expr": "[n, n * 2]"}, "Nested": [{"Ok": {"$expr": "n > 1"}}],
                     "NotExpr": {"$expr": "kept", "other": "{{ n }}"}}}
    request = render_step(step, variables(n=2))
    assert json.loads(request.content) == {"Start": 1782820800, "Text": "3", "Flag": True, "List": [2, 4],
                                           "Nested": [{"Ok": True}], "NotExpr": {"$expr": "kept", "other": "2"}}


def json_paged_spec() -> dict[str, Any]:
    data = simple_spec(steps=[{
        "id": "cost", "method": "POST", "url": "{{ base }}/cost", "retry": False,
        "json": {"Granularity": "MONTHLY", "Size": {"$expr": "2"}},
        "auth": {"type": "bearer", "token": "{{ token }}"},
        "paginate": {"param": "NextPageToken", "in": "json", "max_pages": 5,
                     "next": "body.get('NextPageToken') or none"}}])
    data["strategies"][0]["extract"] = {"amounts": {"path": "cost[].Amount", "type": "array"}}
    data["strategies"][0]["compute"] = {"used": "amounts | sum"}
    return data


def test_pagination_cursor_in_the_json_body(tmp_path: Path) -> None:
    answers = iter([{"Amount": 1, "NextPageToken": "t2"}, {"Amount": 2, "NextPageToken": "t3"}, {"Amount": 4}])
    rec = Recorder(lambda request: httpx.Response(200, json=next(answers)))
    outcome = run(fetch(write_spec(tmp_path, json_paged_spec()), context(rec)))
    assert outcome.ok and outcome.usage["primary"]["usedPercent"] == 7
    assert [str(r.url) for r in rec.requests] == ["https://api.demo.test/cost"] * 3  # no cursor in the query
    assert [json.loads(r.content) for r in rec.requests] == [
        {"Granularity": "MONTHLY", "Size": 2},
        {"Granularity": "MONTHLY", "Size": 2, "NextPageToken": "t2"},
        {"Granularity": "MONTHLY", "Size": 2, "NextPageToken": "t3"}]


def test_json_body_cursor_repeated_is_a_parse_failure(tmp_path: Path) -> None:
    answers = iter([{"Amount": 1, "NextPageToken": "t2"}, {"Amount": 2, "NextPageToken": "t2"}])
    rec = Recorder(lambda request: httpx.Response(200, json=next(answers)))
    outcome = run(fetch(write_spec(tmp_path, json_paged_spec()), context(rec)))
    assert outcome.error.kind == "parse_failure" and outcome.error.message == "Pagination cursor repeated."


@pytest.mark.parametrize("where", ["json", "query"])
def test_the_cursor_is_part_of_the_signed_request(where: str) -> None:
    """The cursor is added before signing: the signature equals that of a request that carried it from the start."""
    auth = {"type": "aws_sigv4", "service": "ce", "region": "us-east-1", "access_key": "test-akid",
            "secret_key": "test-secret"}
    paged = {"id": "cost", "method": "POST", "url": "https://ce.us-east-1.amazonaws.com/", "auth": auth,
             "json": {"Granularity": "MONTHLY"},
             "paginate": {"param": "NextPageToken", "in": where, "next": "none", "max_pages": 5}}
    literal = {k: v for k, v in paged.items() if k != "paginate"}
    if where == "json":
        literal["json"] = {"Granularity": "MONTHLY", "NextPageToken": "tok-9"}
    else:
        literal["url"] = "https://ce.us-east-1.amazonaws.com/?NextPageToken=tok-9"
    signed = render_step(paged, variables(), "tok-9")
    expected = render_step(literal, variables())
    assert signed.content == expected.content and str(signed.url) == str(expected.url)
    assert signed.headers["Authorization"] == expected.headers["Authorization"]


def test_on_invalid_absent_makes_an_invalid_endpoint_absent_without_failing() -> None:
    spec_inputs = {
        "strict": {"policy": "https-or-loopback", "from": [{"env": "STRICT_URL"}]},
        "soft": {"policy": "https-or-loopback", "on_invalid": "absent", "from": [{"env": "SOFT_URL"}]},
        "soft_ok": {"policy": "https-or-loopback", "on_invalid": "absent", "from": [{"env": "SOFT_OK_URL"}]},
    }
    ctx = context(None, env={"STRICT_URL": "http://example.com", "SOFT_URL": "https://u:p@example.com",
                             "SOFT_OK_URL": "http://127.0.0.1:4566"})
    resolved = resolve_inputs(spec_inputs, ctx, provider="demo")
    assert set(resolved.policy_errors) == {"strict"}
    assert resolved.values["soft"] is None and "invalid" in resolved.origins["soft"]
    assert resolved.values["soft_ok"] == "http://127.0.0.1:4566"
    assert resolved.policies["soft"] == "https-or-loopback"


def test_keyring_account_is_a_template_over_earlier_inputs() -> None:
    asked: list[tuple[str, str]] = []

    def keyring_get(service: str, account: str) -> str | None:
        asked.append((service, account))
        return {"octocorp.ghe.com": "ghtest-ghe", "github.com": "ghtest-dotcom"}.get(account)

    spec_inputs = {"host": {"from": [{"config": "enterpriseHost"}]},
                   "token": {"secret": True, "from": [
                       {"keyring": {"service": "engine:demo", "account": "{{ url_host(host) or 'github.com' }}"}}]}}
    for config, account, token in [({"enterpriseHost": "https://OctoCorp.GHE.com/login"}, "octocorp.ghe.com",
                                     "ghtest-ghe"), ({}, "github.com", "ghtest-dotcom")]:
        asked.clear()
        ctx = context(None, env={}, config={"demo": config}, keyring_get=keyring_get)
        resolved = resolve_inputs(spec_inputs, ctx, provider="demo")
        assert asked == [("engine:demo", account)] and resolved.values["token"] == token


def test_validation_of_expr_values_and_keyring_account_templates(tmp_path: Path) -> None:
    data = simple_spec(steps=[{"id": "info", "method": "POST", "url": "{{ base }}/info",
                               "json": {"n": {"$expr": "no_such_name + 1"}}}])
    data["inputs"]["token"]["from"].append({"keyring": {"service": "engine:demo", "account": "{{ later }}"}})
    data["inputs"]["later"] = {"from": [{"env": "LATER"}]}
    problems = "\n".join(check_spec(write_spec(tmp_path, data)))
    assert "reads undefined name 'no_such_name'" in problems
    assert "keyring account reads undefined name 'later'" in problems
    # An input declared before `token` may be read; `base` is moved ahead of it.
    data["inputs"]["token"]["from"][-1]["keyring"]["account"] = "{{ base }}"
    data["inputs"] = {"base": data["inputs"]["base"], **data["inputs"]}
    data["strategies"][0]["steps"][0]["json"] = {"n": {"$expr": "1 + 1"}}
    assert check_spec(write_spec(tmp_path, data)) == []
