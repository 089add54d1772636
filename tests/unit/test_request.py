"""request.py: HTTP policy — retries, redirects, size cap, timeouts, HTTPS, masking."""
from __future__ import annotations

import http.server
import threading
from pathlib import Path

import httpx
import pytest

from engine.runner import fetch

from ..helpers import Recorder, context, run, simple_spec, write_spec


def ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"used": 40})


def test_retries_once_on_503_honouring_retry_after_capped(tmp_path: Path) -> None:
    calls = iter([httpx.Response(503, headers={"Retry-After": "30"}), httpx.Response(200, json={"used": 12})])
    rec = Recorder(lambda r: next(calls))
    outcome = run(fetch(write_spec(tmp_path, simple_spec()), context(rec)))
    assert outcome.ok and outcome.usage["primary"]["usedPercent"] == 12
    assert len(rec.requests) == 2 and rec.sleeps == [10.0]


def test_retry_default_delay_and_only_one_retry(tmp_path: Path) -> None:
    rec = Recorder(lambda r: httpx.Response(502, text="bad gateway"))
    outcome = run(fetch(write_spec(tmp_path, simple_spec()), context(rec)))
    assert outcome.error.kind == "provider_unavailable"
    assert len(rec.requests) == 2 and rec.sleeps == [1.0]
    assert "HTTP 502" in outcome.error.message and "bad gateway" in outcome.error.message


def test_step_can_opt_out_of_retry(tmp_path: Path) -> None:
    steps = [{"id": "info", "url": "{{ base }}/info", "retry": False}]
    rec = Recorder(lambda r: httpx.Response(429))
    outcome = run(fetch(write_spec(tmp_path, simple_spec(steps=steps)), context(rec)))
    assert outcome.error.kind == "rate_limited" and len(rec.requests) == 1


def test_same_origin_redirect_is_followed_with_credentials(tmp_path: Path) -> None:
    def answer(r: httpx.Request) -> httpx.Response:
        if r.url.path == "/info":
            return httpx.Response(302, headers={"Location": "/v2/info"})
        assert r.headers["Authorization"] == "Bearer sk-demo-secret-value"
        return httpx.Response(200, json={"used": 7})

    rec = Recorder(answer)
    outcome = run(fetch(write_spec(tmp_path, simple_spec()), context(rec)))
    assert outcome.usage["primary"]["usedPercent"] == 7
    assert [str(r.url) for r in rec.requests] == ["https://api.demo.test/info", "https://api.demo.test/v2/info"]


@pytest.mark.parametrize("location", ["https://evil.test/info", "http://api.demo.test/info",
                                      "https://api.demo.test:8443/info"])
def test_cross_origin_redirect_is_refused(tmp_path: Path, location: str) -> None:
    rec = Recorder(lambda r: httpx.Response(301, headers={"Location": location}))
    outcome = run(fetch(write_spec(tmp_path, simple_spec()), context(rec)))
    assert outcome.error.kind == "api_failure" and "another origin" in outcome.error.message
    assert len(rec.requests) == 1  # the credential never went to the other origin


def test_body_over_cap_is_refused(tmp_path: Path) -> None:
    big = b'{"used": 1, "pad": "' + b"x" * (1024 * 1024) + b'"}'
    rec = Recorder(lambda r: httpx.Response(200, content=big))
    outcome = run(fetch(write_spec(tmp_path, simple_spec()), context(rec)))
    assert outcome.error.kind == "api_failure" and "1 MiB cap" in outcome.error.message


def test_timeout_and_connection_errors_are_classified(tmp_path: Path) -> None:
    def slow(r: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=r)

    def refused(r: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=r)

    spec = write_spec(tmp_path, simple_spec())
    assert run(fetch(spec, context(Recorder(slow)))).error.kind == "timeout"
    assert run(fetch(spec, context(Recorder(refused)))).error.kind == "network_failure"


def test_plain_http_needs_a_loopback_policy(tmp_path: Path) -> None:
    rec = Recorder(ok)
    env = {"DEMO_KEY": "sk-demo-secret-value", "DEMO_URL": "http://10.1.2.3:8080"}
    outcome = run(fetch(write_spec(tmp_path, simple_spec()), context(rec, env=env)))
    assert outcome.error.kind == "api_failure" and "loopback" in outcome.error.message
    assert rec.requests == []  # rejected before any request
    env["DEMO_URL"] = "http://127.0.0.1:9"
    assert run(fetch(write_spec(tmp_path, simple_spec()), context(rec, env=env))).ok


def test_secrets_are_masked_in_errors_and_trace(tmp_path: Path) -> None:
    rec = Recorder(lambda r: httpx.Response(400, text="bad key sk-demo-secret-value"))
    outcome = run(fetch(write_spec(tmp_path, simple_spec()), context(rec), want_trace=True))
    assert "sk-demo-secret-value" not in outcome.error.message
    assert "****" in outcome.error.message
    sent = outcome.trace.requests[0]
    assert sent.headers["authorization"] == "Bearer ****"


def test_sensitive_query_parameters_are_masked() -> None:
    from engine.request import mask_url

    assert mask_url("https://x.test/a?api_key=abc123&page=2", []) == "https://x.test/a?api_key=****&page=2"


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/big":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = b"x" * 65536
            try:
                for _ in range(40):  # 2.5 MiB, no Content-Length
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.write(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass
            return
        body = b'{"used": 33}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def local_server():  # noqa: ANN201
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_real_socket_fetch_and_streamed_cap(tmp_path: Path, local_server: str) -> None:
    from engine.context import _ProxyTransport

    env = {"DEMO_KEY": "sk-demo-secret-value", "DEMO_URL": local_server}
    spec = write_spec(tmp_path, simple_spec())
    outcome = run(fetch(spec, context(None, env=env, transport=_ProxyTransport(env))))
    assert outcome.ok and outcome.usage["primary"]["usedPercent"] == 33
    steps = [{"id": "info", "url": "{{ base }}/big"}]
    spec = write_spec(tmp_path, simple_spec(steps=steps))
    outcome = run(fetch(spec, context(None, env=env, transport=_ProxyTransport(env))))
    assert outcome.error.kind == "api_failure" and "cap" in outcome.error.message


def test_proxy_settings_come_from_the_context_env() -> None:
    from engine.context import _ProxyTransport

    t = _ProxyTransport({"HTTPS_PROXY": "http://proxy.test:3128", "no_proxy": "internal.test,.corp.test"})
    assert t._pick(httpx.URL("https://api.example.com/x")) is t._proxies["https"]
    assert t._pick(httpx.URL("https://internal.test/x")) is t._direct
    assert t._pick(httpx.URL("https://a.corp.test/x")) is t._direct
    assert t._pick(httpx.URL("http://plain.test/x")) is t._direct  # no HTTP_PROXY / ALL_PROXY set
    assert _ProxyTransport({})._proxies == {}
