"""`engine login copilot`: the real copilot spec's device flow against a fake of GitHub's endpoints (an
httpx.MockTransport in the RunContext); the token goes to the context's keyring_set, never the real keyring, and
`engine run copilot` reads it back from there."""
from __future__ import annotations

import io
import json
import urllib.parse
from typing import Any

import httpx
import pytest

from engine.errors import EngineError
from engine.login import run_login
from engine.runner import fetch
from engine.validate import check_spec
from engine.load import load_spec

from ..conftest import ROOT
from ..helpers import Recorder, context, run

CLIENT_ID = "Iv1.b507a08c87ecfe98"
GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def copilot_spec() -> Any:
    spec = load_spec(ROOT / "specs" / "copilot.yaml")
    assert check_spec(spec) == []
    return spec


def form(request: httpx.Request) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(request.content.decode()))


class FakeGitHub(Recorder):
    """GitHub's device-code and access-token endpoints, answering the polls from a script."""

    def __init__(self, polls: list[dict[str, Any]], host: str = "github.com") -> None:
        self.polls = list(polls)
        self.host = host
        super().__init__(self.reply)

    def reply(self, request: httpx.Request) -> httpx.Response:
        assert request.url.scheme == "https" and request.url.host == self.host.split(":")[0]
        if request.url.path == "/login/device/code":
            return httpx.Response(200, json={
                "device_code": "dc-test-3584", "user_code": "WDJB-MJHT",
                "verification_uri": f"https://{self.host}/login/device", "expires_in": 899, "interval": 5})
        if request.url.path == "/login/oauth/access_token":
            return httpx.Response(200, json=self.polls.pop(0))
        return httpx.Response(404, json={"message": "Not Found"})


def login_context(fake: FakeGitHub, stored: dict[tuple[str, str], str], config: dict[str, Any] | None = None) -> Any:
    return context(fake, env={}, config={"copilot": config or {}},
                   keyring_set=lambda service, account, secret: stored.__setitem__((service, account), secret))


def test_device_flow_requests_and_token_stored_in_context_keyring() -> None:
    fake = FakeGitHub([{"error": "authorization_pending"}, {"error": "slow_down", "interval": 10},
                       {"access_token": "ghtest-login-token-0001", "token_type": "bearer", "scope": "read:user"}])
    stored: dict[tuple[str, str], str] = {}
    out = io.StringIO()
    where = run(run_login(copilot_spec(), login_context(fake, stored), out))

    assert stored == {("engine:copilot", "github.com"): "ghtest-login-token-0001"}
    assert "engine:copilot" in where and "github.com" in where
    code, *polls = fake.requests
    assert (code.method, str(code.url)) == ("POST", "https://github.com/login/device/code")
    assert form(code) == {"client_id": CLIENT_ID, "scope": "read:user"}
    assert code.headers["Accept"] == "application/json"
    assert code.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert len(polls) == 3
    for poll in polls:
        assert (poll.method, str(poll.url)) == ("POST", "https://github.com/login/oauth/access_token")
        assert form(poll) == {"client_id": CLIENT_ID, "device_code": "dc-test-3584", "grant_type": GRANT}
        assert poll.headers["Accept"] == "application/json"
        assert poll.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert fake.sleeps == [5.0, 5.0, 10.0]  # `interval` before each poll, 5 s more after slow_down
    text = out.getvalue()
    assert "WDJB-MJHT" in text and "https://github.com/login/device" in text
    assert "ghtest-login-token-0001" not in text


def test_enterprise_host_is_normalized_for_login_and_keyring_account() -> None:
    fake = FakeGitHub([{"access_token": "ghtest-login-ghe-0002", "token_type": "bearer", "scope": "read:user"}],
                      host="octocorp.ghe.com")
    stored: dict[tuple[str, str], str] = {}
    run(run_login(copilot_spec(), login_context(fake, stored, {"enterpriseHost": " https://OctoCorp.GHE.com/login "}),
                  io.StringIO()))
    assert [str(r.url) for r in fake.requests] == ["https://octocorp.ghe.com/login/device/code",
                                                    "https://octocorp.ghe.com/login/oauth/access_token"]
    assert stored == {("engine:copilot", "octocorp.ghe.com"): "ghtest-login-ghe-0002"}


def test_stored_token_is_read_back_by_the_copilot_fetch() -> None:
    """What login stores (service, account) is exactly what the spec's keyring input reads."""
    stored: dict[tuple[str, str], str] = {}
    fake = FakeGitHub([{"access_token": "ghtest-login-roundtrip-0003", "token_type": "bearer", "scope": "read:user"}])
    run(run_login(copilot_spec(), login_context(fake, stored), io.StringIO()))

    def api(request: httpx.Request) -> httpx.Response:
        assert str(request.url) == "https://api.github.com/copilot_internal/user"
        assert request.headers["Authorization"] == "token ghtest-login-roundtrip-0003"
        return httpx.Response(200, json={"copilot_plan": "individual", "quota_snapshots": {
            "premium_interactions": {"entitlement": 300, "remaining": 150, "percent_remaining": 50}}})

    ctx = context(api, env={}, keyring_get=lambda service, account: stored.get((service, account)))
    outcome = run(fetch(copilot_spec(), ctx))
    assert outcome.error is None
    assert outcome.usage["primary"]["usedPercent"] == 50


@pytest.mark.parametrize("answer,kind", [({"error": "expired_token"}, "timeout"),
                                         ({"error": "access_denied"}, "auth_expired")])
def test_device_flow_failures_store_nothing(answer: dict[str, Any], kind: str) -> None:
    stored: dict[tuple[str, str], str] = {}
    with pytest.raises(EngineError) as exc:
        run(run_login(copilot_spec(), login_context(FakeGitHub([answer]), stored), io.StringIO()))
    assert exc.value.kind == kind
    assert stored == {}


def test_device_code_http_error_is_reported() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, text=json.dumps({"message": "unavailable"}))

    with pytest.raises(EngineError) as exc:
        run(run_login(copilot_spec(), context(handler, env={}), io.StringIO()))
    assert exc.value.kind == "api_failure"
