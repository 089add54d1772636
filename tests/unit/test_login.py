"""login.py: the OAuth device flow against a fake authorization server on 127.0.0.1; the token lands in the
context's keyring (never the real one)."""
from __future__ import annotations

import io
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from engine.context import _ProxyTransport
from engine.errors import EngineError
from engine.login import run_login

from ..helpers import context, run, write_spec


class FakeGitHub(BaseHTTPRequestHandler):
    script: list[dict] = []
    seen: list[tuple[str, dict]] = []

    def do_POST(self) -> None:  # noqa: N802
        form = dict(urllib.parse.parse_qsl(self.rfile.read(int(self.headers["Content-Length"])).decode()))
        FakeGitHub.seen.append((self.path, form))
        if self.path == "/login/device/code":
            body = {"device_code": "dev-123", "user_code": "WDJB-MJHT", "verification_uri": "https://example.test/device",
                    "expires_in": 900, "interval": 5}
        else:
            body = FakeGitHub.script.pop(0)
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def github():  # noqa: ANN201
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeGitHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    FakeGitHub.seen = []
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def login_spec(tmp_path: Path) -> object:
    return write_spec(tmp_path, {
        "id": "demo", "name": "Demo", "cli_name": "demo", "source_modes": ["auto", "api"],
        "inputs": {"host": {"policy": "https-or-loopback", "from": [{"env": "DEMO_HOST"}]}},
        "login": {"type": "device_flow", "device_code_url": "{{ host }}/login/device/code",
                  "token_url": "{{ host }}/login/oauth/access_token", "client_id": "Iv1.demo", "scope": "read:user",
                  "store": {"service": "engine:demo", "account": "{{ host }}"}},
        "strategies": [{"id": "api", "kind": "api", "source": "api", "modes": ["auto"], "steps": [], "usage": {}}],
    })


def test_device_flow_polls_slows_down_and_stores_the_token(tmp_path: Path, github: str) -> None:
    FakeGitHub.script = [{"error": "authorization_pending"}, {"error": "slow_down"},
                         {"access_token": "gho_testtoken", "token_type": "bearer", "scope": "read:user"}]
    stored: dict = {}
    sleeps: list[float] = []

    async def sleep(s: float) -> None:
        sleeps.append(s)

    env = {"DEMO_HOST": f"http://{github}"}
    ctx = context(None, env=env, transport=_ProxyTransport({}), sleep=sleep,
                  keyring_set=lambda s, a, v: stored.__setitem__((s, a), v))
    out = io.StringIO()
    run(run_login(login_spec(tmp_path), ctx, out))
    assert stored == {("engine:demo", f"http://{github}"): "gho_testtoken"}
    assert sleeps == [5.0, 5.0, 10.0]  # interval, then +5 s after slow_down
    assert "WDJB-MJHT" in out.getvalue() and "https://example.test/device" in out.getvalue()
    assert "gho_testtoken" not in out.getvalue()
    assert FakeGitHub.seen[0] == ("/login/device/code", {"client_id": "Iv1.demo", "scope": "read:user"})
    assert FakeGitHub.seen[1][1] == {"client_id": "Iv1.demo", "device_code": "dev-123",
                                     "grant_type": "urn:ietf:params:oauth:grant-type:device_code"}


@pytest.mark.parametrize("answer,kind", [({"error": "expired_token"}, "timeout"),
                                         ({"error": "access_denied"}, "auth_expired")])
def test_device_flow_failures(tmp_path: Path, github: str, answer: dict, kind: str) -> None:
    FakeGitHub.script = [answer]

    async def sleep(s: float) -> None:
        return None

    ctx = context(None, env={"DEMO_HOST": f"http://{github}"}, transport=_ProxyTransport({}), sleep=sleep)
    with pytest.raises(EngineError) as exc:
        run(run_login(login_spec(tmp_path), ctx, io.StringIO()))
    assert exc.value.kind == kind


def test_plain_http_login_endpoint_needs_a_loopback_policy(tmp_path: Path) -> None:
    ctx = context(None, env={"DEMO_HOST": "http://192.168.0.10"})
    with pytest.raises(EngineError) as exc:
        run(run_login(login_spec(tmp_path), ctx, io.StringIO()))
    assert exc.value.kind == "api_failure"
