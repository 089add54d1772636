"""inputs.py: source chains, sanitizing, URL policies (fail closed)."""
from __future__ import annotations

import pytest

from engine.inputs import check_url, mask, resolve_inputs, sanitize

from ..helpers import context


@pytest.mark.parametrize("raw,expected", [(None, None), ("  ", None), (" 'abc' ", "abc"), ('"x"', "x"), ("a'", "a'")])
def test_sanitize(raw: str | None, expected: str | None) -> None:
    assert sanitize(raw) == expected


@pytest.mark.parametrize("raw,policy,expected", [
    ("api.example.com", "https", "https://api.example.com"),
    ("https://api.example.com/v1/", "https", "https://api.example.com/v1/"),
    ("http://127.0.0.1:8080", "https-or-loopback", "http://127.0.0.1:8080"),
    ("http://localhost:4000/x", "https-or-loopback", "http://localhost:4000/x"),
    ("http://[::1]:4000", "https-or-loopback", "http://[::1]:4000"),
    ("http://192.168.1.20:4000", "https-or-private", "http://192.168.1.20:4000"),
])
def test_check_url_accepts(raw: str, policy: str, expected: str) -> None:
    assert check_url(raw, policy) == expected


@pytest.mark.parametrize("raw,policy,fragment", [
    ("http://api.example.com", "https", "must use https"),
    ("https://user:pw@api.example.com", "https", "user-info"),
    ("https://token@api.example.com", "https", "user-info"),
    ("http://192.168.1.20", "https-or-loopback", "loopback"),
    ("http://8.8.8.8", "https-or-private", "private"),
    ("ftp://api.example.com", "https", "scheme"),
    ("https://", "https", "no host"),
    ("https://api%2Fexample.com", "https", "clean host"),
    ("https://api.example.com:99999", "https", "port"),
])
def test_check_url_rejects(raw: str, policy: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        check_url(raw, policy)


def test_chain_order_first_non_empty_wins_and_secrets_are_collected() -> None:
    spec_inputs = {
        "token": {"secret": True, "from": [{"account": "token"}, {"config": "apiKey"}, {"env": "A_KEY"}, {"env": "B_KEY"}]},
        "region": {"from": [{"config": "region"}, {"default": "global"}]},
    }
    ctx = context(None, env={"A_KEY": "  ", "B_KEY": "sk-from-b"})
    r = resolve_inputs(spec_inputs, ctx, provider="demo")
    assert r.values == {"token": "sk-from-b", "region": "global"}
    assert r.origins["token"] == "env B_KEY" and r.secrets == ["sk-from-b"]
    ctx.config = {"demo": {"apiKey": "'sk-config'", "region": "cn"}}
    r = resolve_inputs(spec_inputs, ctx, provider="demo", account={"token": "sk-account"})
    assert r.values == {"token": "sk-account", "region": "cn"}


def test_policy_violation_is_recorded_not_raised() -> None:
    spec_inputs = {"base": {"policy": "https", "from": [{"env": "BASE"}]}}
    r = resolve_inputs(spec_inputs, context(None, env={"BASE": "http://x.test"}), provider="demo")
    assert r.values["base"] is None and r.policy_errors["base"].kind == "api_failure"
    assert "BASE" in r.policy_errors["base"].message


def test_mask() -> None:
    assert mask("key=sk-abcdef and sk-abcdef", ["sk-abcdef"]) == "key=**** and ****"
