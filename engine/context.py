"""RunContext: every side effect a fetch can have (clock, env, home, config, keyring, cookies, commands, HTTP).

Replay (engine/cassette.py) swaps this one object and nothing else. `RunContext.live()` is the only place
in the engine that reads the real process environment, home folder, clock and network.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any, Awaitable, Callable, Mapping

import httpx

from . import host

KeyringGet = Callable[[str, str], "str | None"]
KeyringSet = Callable[[str, str, str], None]
CookieGet = Callable[[str], "list[dict[str, Any]]"]


@dataclass
class RunContext:
    """The whole outside world of a run."""

    env: Mapping[str, str]
    home: Path
    clock: Callable[[], datetime]
    tz: tzinfo
    transport: httpx.AsyncBaseTransport
    config: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    keyring_get: KeyringGet = lambda service, account: None
    keyring_set: KeyringSet = lambda service, account, secret: None
    cookies_get: CookieGet = lambda domain: []
    commands: Mapping[str, Any] = field(default_factory=dict)
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    cache_dir: Path | None = None
    is_replay: bool = False
    #: Builds a fresh transport per provider (live network); None shares `transport` (replay).
    make_transport: Callable[[], httpx.AsyncBaseTransport] | None = None

    def now(self) -> datetime:
        return self.clock()

    def config_entry(self, provider_id: str) -> Mapping[str, Any]:
        return self.config.get(provider_id) or {}

    def http_client(self) -> httpx.AsyncClient:
        """A client for one provider's fetch; redirects are handled by request.py.

        Each provider gets its own small connection pool: httpcore's pool scans every connection per request,
        so one pool shared by 54 concurrent providers costs quadratic CPU.
        """
        transport = self.make_transport() if self.make_transport else self.transport
        return httpx.AsyncClient(transport=transport, follow_redirects=False, trust_env=False)

    @classmethod
    def live(cls, config: Mapping[str, Mapping[str, Any]] | None = None) -> "RunContext":
        env = host.environment()
        shared_ssl: list[Any] = []

        def make_transport() -> httpx.AsyncBaseTransport:
            if not shared_ssl:  # built once, lazily: loading the CA bundle costs tens of milliseconds
                shared_ssl.append(httpx.create_ssl_context())
            return _ProxyTransport(env, shared_ssl[0])

        return cls(
            env=env,
            home=host.home(),
            clock=host.now,
            tz=host.local_tz(env),
            transport=httpx.MockTransport(_no_transport),
            make_transport=make_transport,
            config=config or {},
            keyring_get=_keyring_get,
            keyring_set=_keyring_set,
            cookies_get=_browser_cookies,
            cache_dir=host.user_cache_dir(env),
        )


def _no_transport(request: httpx.Request) -> httpx.Response:  # pragma: no cover - live contexts use make_transport
    raise RuntimeError("live contexts build a transport per provider")


def monotonic() -> float:
    """Durations for traces; never part of a snapshot."""
    return time.perf_counter()


def _keyring_get(service: str, account: str) -> str | None:
    import keyring  # imported lazily: slow, and only a few providers use it

    try:
        return keyring.get_password(service, account)
    except Exception:
        return None


def _keyring_set(service: str, account: str, secret: str) -> None:
    import keyring

    keyring.set_password(service, account, secret)


def _browser_cookies(domain: str) -> list[dict[str, Any]]:
    import browser_cookie3  # lazily: slow, and only web providers use it

    out: list[dict[str, Any]] = []
    try:
        jar = browser_cookie3.load(domain_name=domain)
    except Exception:
        return out
    for c in jar:
        out.append({"domain": c.domain, "name": c.name, "value": c.value})
    return out


class _ProxyTransport(httpx.AsyncBaseTransport):
    """Real network transport honouring HTTP(S)_PROXY / ALL_PROXY / NO_PROXY from the context's env."""

    def __init__(self, env: Mapping[str, str], ssl_context: Any = None) -> None:
        def get(name: str) -> str | None:
            return env.get(name) or env.get(name.lower()) or None

        ssl_context = ssl_context or httpx.create_ssl_context()
        limits = httpx.Limits(max_connections=20, max_keepalive_connections=10)
        self._direct = httpx.AsyncHTTPTransport(verify=ssl_context, limits=limits)
        self._proxies: dict[str, httpx.AsyncHTTPTransport] = {}
        for scheme in ("http", "https"):
            url = get(f"{scheme.upper()}_PROXY") or get("ALL_PROXY")
            if url:
                self._proxies[scheme] = httpx.AsyncHTTPTransport(proxy=url, verify=ssl_context, limits=limits)
        self._no_proxy = [h.strip().lstrip(".").lower() for h in (get("NO_PROXY") or "").split(",") if h.strip()]

    def _pick(self, url: httpx.URL) -> httpx.AsyncHTTPTransport:
        host = (url.host or "").lower()
        if "*" in self._no_proxy or any(host == h or host.endswith("." + h) for h in self._no_proxy):
            return self._direct
        return self._proxies.get(url.scheme, self._direct)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._pick(request.url).handle_async_request(request)

    async def aclose(self) -> None:
        await self._direct.aclose()
        for t in self._proxies.values():
            await t.aclose()
