"""Replay: a cassette (CASSETTE.md) -> a RunContext whose world is exactly the cassette's.

HTTP goes through an httpx.MockTransport handler (no sockets); env, clock, time zone, home, config,
keyring, cookies and commands all come from the file. Nothing real is touched.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from contextlib import contextmanager
from datetime import timezone
from pathlib import Path
from typing import Any, Iterator, Mapping
from urllib.parse import parse_qsl, urlsplit

import httpx

from .cache import entry_path, read_entry, write_entry
from .context import RunContext
from .errors import EngineError
from .functions import iso
from .load import display_path, parse_yaml
from .request import mask_url

SECRET_HINTS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "COOKIE", "SESSION")


def load_cassette(path: Path, cache_dir: Path | None = None) -> dict[str, Any]:
    """Read a cassette; with `cache_dir`, parsed cassettes are kept (marshal, keyed by the file's hash) so that
    re-running one while editing a spec skips the YAML parser."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise EngineError("cassette_invalid", f"cannot read cassette {display_path(path)}: {exc.strerror}") from None
    entry = entry_path(cache_dir, "cassettes", raw) if cache_dir is not None else None
    cached = read_entry(entry) if entry is not None else None
    if isinstance(cached, dict):
        return cached
    try:
        data = parse_yaml(raw.decode("utf-8"), path)
    except EngineError as exc:
        raise EngineError("cassette_invalid", exc.message, location=exc.location) from None
    except UnicodeDecodeError:
        raise EngineError("cassette_invalid", f"{display_path(path)}: not UTF-8 text") from None
    if not isinstance(data, dict) or "provider" not in data or "now" not in data:
        raise EngineError("cassette_invalid", f"{display_path(path)}: a cassette needs `provider` and `now`")
    if entry is not None:
        write_entry(entry, data)
    return data


def _query(url: str) -> list[tuple[str, str]]:
    return sorted(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def _strip_query(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.lower()}{parts.path or '/'}"


class Replay:
    """The HTTP half of a cassette: match requests to recorded exchanges, consumed in order of first match."""

    def __init__(self, exchanges: list[Mapping[str, Any]], secrets: list[str]) -> None:
        self.exchanges = exchanges
        self.used = [False] * len(exchanges)
        self.secrets = secrets
        self.seen: list[str] = []

    def _matches(self, entry: Mapping[str, Any], request: httpx.Request) -> bool:
        want = entry["request"]
        if want.get("method", "GET").upper() != request.method:
            return False
        url = str(request.url)
        if _strip_query(want["url"]) != _strip_query(url) or _query(want["url"]) != _query(url):
            return False
        for name, value in (want.get("headers") or {}).items():
            if request.headers.get(name) != str(value):
                return False
        if "json" in want:
            try:
                if json.loads(request.content or b"null") != want["json"]:
                    return False
            except ValueError:
                return False
        return True

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(f"{request.method} {mask_url(request.url, self.secrets)}")
        candidates = [i for i, e in enumerate(self.exchanges) if self._matches(e, request)]
        if not candidates:
            raise EngineError(
                "network_failure",
                f"cassette has no recorded response for {request.method} {mask_url(request.url, self.secrets)}",
            )
        fresh = [i for i in candidates if not self.used[i]]
        index = fresh[0] if fresh else candidates[-1]  # a retry of the last exchange replays it again
        self.used[index] = True
        return _response(self.exchanges[index].get("response", {}), request)


def _response(spec: Mapping[str, Any], request: httpx.Request) -> httpx.Response:
    headers = {str(k): str(v) for k, v in (spec.get("headers") or {}).items()}
    if "json" in spec:
        content = json.dumps(spec["json"]).encode()
        headers.setdefault("Content-Type", "application/json")
    else:
        content = str(spec.get("text", "")).encode("utf-8")
    return httpx.Response(int(spec.get("status", 200)), headers=headers, content=content, request=request)


async def _no_sleep(seconds: float) -> None:
    """Replay never waits: retry delays are recorded by the clock, not slept."""


@contextmanager
def replay_context(cassette: Mapping[str, Any]) -> Iterator[tuple[RunContext, Replay]]:
    """A RunContext for one cassette, with a fake home folder that is removed afterwards."""
    env = {str(k): str(v) for k, v in (cassette.get("env") or {}).items()}
    secrets = [v for k, v in env.items() if any(h in k.upper() for h in SECRET_HINTS) and len(v) >= 4]
    now = iso(str(cassette["now"]))
    if now is None:
        raise EngineError("cassette_invalid", "`now` is required")
    now = now.astimezone(timezone.utc)
    try:
        tz_name = str(cassette.get("tz", "UTC"))
        if tz_name == "UTC":
            tz: Any = timezone.utc
        else:
            from zoneinfo import ZoneInfo

            tz = ZoneInfo(tz_name)
    except Exception:
        raise EngineError("cassette_invalid", f"unknown time zone {cassette.get('tz')!r}") from None
    replay = Replay(list(cassette.get("http") or []), secrets)
    home = Path(tempfile.mkdtemp(prefix="engine-home-"))
    try:
        for rel, content in (cassette.get("home") or {}).items():
            target = (home / rel).resolve()
            if home.resolve() not in target.parents:
                raise EngineError("cassette_invalid", f"home path {rel!r} escapes the fake home")
            target.parent.mkdir(parents=True, exist_ok=True)
            if "json" in content:
                target.write_text(json.dumps(content["json"]), encoding="utf-8")
            else:
                target.write_text(str(content.get("text", "")), encoding="utf-8")
        keyring = {(k["service"], k["account"]): k["secret"] for k in cassette.get("keyring") or []}
        cookies = list(cassette.get("cookies") or [])

        def cookies_get(domain: str) -> list[dict[str, Any]]:
            d = domain.lstrip(".").lower()
            return [c for c in cookies if str(c.get("domain", "")).lstrip(".").lower() in (d,) or
                    d.endswith("." + str(c.get("domain", "")).lstrip(".").lower())]

        provider = str(cassette["provider"])
        ctx = RunContext(
            env=env,
            home=home,
            clock=lambda: now,
            tz=tz,
            transport=httpx.MockTransport(replay.handle),
            config={provider: dict(cassette.get("config") or {})},
            keyring_get=lambda service, account: keyring.get((service, account)),
            cookies_get=cookies_get,
            commands=dict(cassette.get("commands") or {}),
            sleep=_no_sleep,
            cache_dir=None,
            is_replay=True,
        )
        yield ctx, replay
    finally:
        shutil.rmtree(home, ignore_errors=True)


def subset_mismatches(expected: Any, actual: Any, path: str = "$") -> list[str]:
    """CASSETTE.md's `expect` rule: a subset match, numbers equal within 0.01, lists element by element."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: expected an object, got {json.dumps(actual)}"]
        out = []
        for key, value in expected.items():
            if key not in actual:
                out.append(f"{path}.{key}: missing (expected {json.dumps(value)})")
            else:
                out.extend(subset_mismatches(value, actual[key], f"{path}.{key}"))
        return out
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{path}: expected {len(expected)} items, got {json.dumps(actual)}"]
        out = []
        for i, (e, a) in enumerate(zip(expected, actual)):
            out.extend(subset_mismatches(e, a, f"{path}[{i}]"))
        return out
    if isinstance(expected, (int, float)) and not isinstance(expected, bool):
        if isinstance(actual, (int, float)) and not isinstance(actual, bool) and abs(expected - actual) <= 0.01:
            return []
        return [f"{path}: expected {expected}, got {json.dumps(actual)}"]
    if expected != actual:
        return [f"{path}: expected {json.dumps(expected)}, got {json.dumps(actual)}"]
    return []
