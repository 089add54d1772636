"""cassette.py: replay matching, isolation, and the `expect` subset rule."""
from __future__ import annotations

import httpx
import pytest

from engine.cassette import Replay, replay_context, subset_mismatches
from engine.errors import EngineError


def req(url: str, method: str = "GET", **kw) -> httpx.Request:  # noqa: ANN003
    return httpx.Request(method, url, **kw)


def test_query_order_does_not_matter_and_headers_must_match() -> None:
    r = Replay([{"request": {"url": "https://x.test/a?b=2&a=1", "headers": {"X-Key": "k"}},
                 "response": {"status": 200, "json": {"ok": True}}}], [])
    assert r.handle(req("https://x.test/a?a=1&b=2", headers={"X-Key": "k"})).json() == {"ok": True}
    with pytest.raises(EngineError) as exc:
        r.handle(req("https://x.test/a?a=1&b=2", headers={"X-Key": "other"}))
    assert exc.value.kind == "network_failure"


def test_exchanges_are_consumed_in_order_and_the_last_match_replays() -> None:
    r = Replay([{"request": {"url": "https://x.test/a"}, "response": {"status": 503}},
                {"request": {"url": "https://x.test/a"}, "response": {"status": 200, "text": "ok"}}], [])
    assert [r.handle(req("https://x.test/a")).status_code for _ in range(3)] == [503, 200, 200]


def test_json_body_must_equal() -> None:
    r = Replay([{"request": {"method": "POST", "url": "https://x.test/q", "json": {"q": 1}},
                 "response": {"status": 200, "json": {}}}], [])
    assert r.handle(req("https://x.test/q", "POST", json={"q": 1})).status_code == 200
    with pytest.raises(EngineError):
        r.handle(req("https://x.test/q", "POST", json={"q": 2}))


def test_unmatched_request_names_method_and_masked_url() -> None:
    r = Replay([], ["sk-secret-123"])
    with pytest.raises(EngineError) as exc:
        r.handle(req("https://x.test/v1/sk-secret-123/usage?api_key=zzz&page=2"))
    message = exc.value.message
    assert message.startswith("cassette has no recorded response for GET https://x.test/v1/****/usage")
    assert "sk-secret-123" not in message and "zzz" not in message and "page=2" in message


def test_context_isolates_env_clock_home_and_keyring() -> None:
    cassette = {"provider": "zed", "now": "2026-07-01T12:00:00Z", "tz": "Europe/Berlin",
                "env": {"A": "1"}, "config": {"apiKey": "k"},
                "home": {".codex/auth.json": {"json": {"tokens": {"x": 1}}}, "notes.txt": {"text": "hi"}},
                "keyring": [{"service": "Zed", "account": "https://zed.dev", "secret": "s3"}],
                "cookies": [{"domain": ".example.com", "name": "session", "value": "abc"}]}
    with replay_context(cassette) as (ctx, _):
        assert dict(ctx.env) == {"A": "1"}
        assert ctx.now().isoformat() == "2026-07-01T12:00:00+00:00" and str(ctx.tz) == "Europe/Berlin"
        assert (ctx.home / ".codex" / "auth.json").read_text() == '{"tokens": {"x": 1}}'
        assert (ctx.home / "notes.txt").read_text() == "hi"
        assert ctx.keyring_get("Zed", "https://zed.dev") == "s3" and ctx.keyring_get("Zed", "x") is None
        assert ctx.cookies_get("app.example.com")[0]["value"] == "abc" and ctx.cookies_get("other.com") == []
        assert ctx.config_entry("zed") == {"apiKey": "k"}
        home = ctx.home
    assert not home.exists()


def test_home_paths_cannot_escape() -> None:
    with pytest.raises(EngineError):
        with replay_context({"provider": "zed", "now": "2026-07-01T12:00:00Z", "home": {"../x": {"text": ""}}}):
            pass


def test_subset_rule() -> None:
    actual = {"usage": {"primary": {"usedPercent": 25.004, "windowMinutes": 300}, "list": [1, 2]}, "x": 1}
    assert subset_mismatches({"usage": {"primary": {"usedPercent": 25}}}, actual) == []
    assert subset_mismatches({"usage": {"primary": {"usedPercent": 25.5}}}, actual)
    assert subset_mismatches({"usage": {"list": [1]}}, actual)
    assert subset_mismatches({"usage": {"secondary": None}}, actual) == ["$.usage.secondary: missing (expected null)"]


def test_parsed_cassettes_are_cached_by_content(tmp_path) -> None:  # noqa: ANN001
    from engine.cassette import load_cassette

    path = tmp_path / "c.yaml"
    path.write_text('provider: openrouter\nnow: "2026-07-01T12:00:00Z"\nenv: {A: "1"}\n')
    cache = tmp_path / "cache"
    assert load_cassette(path, cache)["env"] == {"A": "1"}
    assert len(list((cache / "cassettes").iterdir())) == 1
    assert load_cassette(path, cache)["env"] == {"A": "1"}
    path.write_text('provider: openrouter\nnow: "2026-07-01T12:00:00Z"\nenv: {A: "2"}\n')
    assert load_cassette(path, cache)["env"] == {"A": "2"}  # an edited cassette is parsed again
