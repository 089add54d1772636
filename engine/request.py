"""Request stage: render a spec step and send it (timeouts, size cap, same-origin redirects, one retry).

```yaml
- id: credits
  method: GET
  url: "{{ base_url }}/credits"
  headers: {Accept: application/json, X-Title: "{{ x_title }}"}
  auth: {type: bearer, token: "{{ token }}"}
```
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
from jinja2 import UndefinedError

from .context import RunContext, monotonic
from .errors import EngineError
from .expr import compile_expr, compile_template, evaluate
from .inputs import is_local_host, mask

DEFAULT_TIMEOUT_S = 15.0
DEFAULT_MAX_BYTES = 1024 * 1024
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
RETRY_AFTER_CAP_S = 10.0
RETRY_DEFAULT_DELAY_S = 1.0
MAX_REDIRECTS = 5
SENSITIVE_QUERY = ("key", "token", "secret", "password", "signature", "auth", "session")


@dataclass
class Sent:
    """A rendered request (what the trace shows, masked) and its response."""

    step: str
    method: str
    url: str
    headers: dict[str, str]
    status: int | None = None
    duration_ms: float = 0.0
    attempts: int = 0
    response_headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    text: str = ""
    error: str | None = None


def _render(value: Any, variables: dict[str, Any], what: str) -> Any:
    """Render every string in a (possibly nested) value as a template."""
    if isinstance(value, str):
        if "{" not in value:  # plain text: no template to render
            return value
        return evaluate(compile_template(value), variables, what=what)
    if isinstance(value, list):
        return [_render(v, variables, f"{what}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        if len(value) == 1 and isinstance(value.get("$expr"), str):  # a typed value: number, bool, list, object
            return evaluate(compile_expr(value["$expr"]), variables, what=what)
        return {k: _render(v, variables, f"{what}.{k}") for k, v in value.items()}
    return value


def _auth_bearer(auth: Mapping[str, Any], v: dict[str, Any], what: str, request: httpx.Request) -> None:
    request.headers["Authorization"] = "Bearer " + _render(auth["token"], v, what).strip()


def _auth_header(auth: Mapping[str, Any], v: dict[str, Any], what: str, request: httpx.Request) -> None:
    request.headers[auth["name"]] = _render(auth["value"], v, what).strip()


def _auth_basic(auth: Mapping[str, Any], v: dict[str, Any], what: str, request: httpx.Request) -> None:
    pair = f"{_render(auth['username'], v, what)}:{_render(auth['password'], v, what)}"
    request.headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()


def _auth_aws_sigv4(auth: Mapping[str, Any], v: dict[str, Any], what: str, request: httpx.Request) -> None:
    from .hooks.sigv4 import sign  # the one auth hook: botocore's signer, imported only by AWS specs

    params = {k: _render(auth[k], v, what).strip() for k in
              ("service", "region", "access_key", "secret_key", "session_token") if k in auth}
    sign(request, now=v["now"], **params)


#: Auth kinds; keys equal the schema's `auth.type` enum (a test checks it). Each sets headers on the final request.
AUTH_KINDS: dict[str, Callable[[Mapping[str, Any], dict[str, Any], str, httpx.Request], None]] = {
    "bearer": _auth_bearer,
    "header": _auth_header,
    "basic": _auth_basic,
    "aws_sigv4": _auth_aws_sigv4,
}
#: Auth kinds implemented by a named hook in engine/hooks/ (what `engine list` reports as `+auth:<kind>`).
AUTH_HOOKS: frozenset[str] = frozenset({"aws_sigv4"})


def render_step(step: Mapping[str, Any], variables: dict[str, Any], cursor: str | None = None) -> httpx.Request:
    """Render a step into an httpx.Request. Header and query values that render empty are not sent. A pagination
    `cursor` goes into the query (or, with `paginate.in: json`, the JSON body) before the request is signed."""
    sid = step["id"]
    url = _render(step["url"], variables, f"step {sid} url").strip()
    query = {k: _render(v, variables, f"step {sid} query.{k}") for k, v in step.get("query", {}).items()}
    query = {k: v for k, v in query.items() if v != ""}  # an empty value is not sent and replaces nothing
    if query:
        parts = urlsplit(url)
        existing = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in query]
        url = urlunsplit(parts._replace(query=urlencode(existing + list(query.items()))))
    headers = {k: _render(v, variables, f"step {sid} headers.{k}") for k, v in step.get("headers", {}).items()}
    headers = {k: v for k, v in headers.items() if v != ""}
    content: bytes | None = None
    in_body = cursor is not None and step.get("paginate", {}).get("in") == "json"
    if "json" in step or in_body:
        body = _render(step.get("json", {}), variables, f"step {sid} json")
        if in_body:
            if not isinstance(body, dict):
                raise EngineError("spec_invalid", f"step {sid}: paginate.in json needs a JSON object body")
            body = {**body, step["paginate"]["param"]: cursor}
        content = json.dumps(body, separators=(",", ":")).encode()
        headers.setdefault("Content-Type", "application/json")
    elif "form" in step:
        form = {k: _render(v, variables, f"step {sid} form.{k}") for k, v in step["form"].items()}
        content = urlencode(form).encode()
        headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
    try:
        request = httpx.Request(step.get("method", "GET"), url, headers=headers, content=content)
    except (httpx.InvalidURL, httpx.UnsupportedProtocol, ValueError) as exc:
        raise EngineError("api_failure", f"step {sid}: invalid request URL: {exc}") from None
    if cursor is not None and not in_body:
        request.url = request.url.copy_set_param(step["paginate"]["param"], cursor)
    if "auth" in step:
        AUTH_KINDS[step["auth"]["type"]](step["auth"], variables, f"step {sid} auth", request)
    return request


def mask_url(url: str | httpx.URL, secrets: list[str]) -> str:
    """The URL with secrets and sensitive query parameters masked."""
    parts = urlsplit(str(url))
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if pairs:
        masked_pairs = [(k, "****" if any(s in k.lower() for s in SENSITIVE_QUERY) else v) for k, v in pairs]
        parts = parts._replace(query=urlencode(masked_pairs, safe="*"))
    return mask(urlunsplit(parts), secrets)


def mask_headers(headers: Mapping[str, str], secrets: list[str]) -> dict[str, str]:
    out = {}
    for k, v in headers.items():
        if k.lower() in ("authorization", "cookie", "proxy-authorization") or any(
            s in k.lower() for s in ("key", "token", "secret")
        ):
            scheme = v.split(" ", 1)[0] + " " if k.lower() == "authorization" and " " in v else ""
            out[k] = scheme + "****"
        else:
            out[k] = mask(v, secrets)
    return out


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return (url.scheme, (url.host or "").lower(), url.port)


def check_request_url(url: httpx.URL, allow: str) -> None:
    """HTTPS always; plain HTTP only to loopback/private hosts when an input policy allows it."""
    if url.scheme == "https":
        return
    if url.scheme == "http" and allow != "https":
        if is_local_host(url.host or "", allow_private=(allow == "https-or-private")):
            return
    raise EngineError("api_failure", f"refusing to send to {url.scheme}://{url.host}: HTTPS is required")


async def send(
    client: httpx.AsyncClient,
    ctx: RunContext,
    request: httpx.Request,
    *,
    step: Mapping[str, Any],
    secrets: list[str],
    allow: str = "https",
) -> Sent:
    """Send with the engine's HTTP policy; the result carries status, headers and the (capped) body."""
    timeout = float(step.get("timeout_s", DEFAULT_TIMEOUT_S))
    max_bytes = int(step.get("max_bytes", DEFAULT_MAX_BYTES))
    may_retry = step.get("retry", True)
    sent = Sent(step=step["id"], method=request.method, url=mask_url(request.url, secrets),
                headers=mask_headers(dict(request.headers), secrets))
    started = monotonic()
    try:
        check_request_url(request.url, allow)
        for attempt in (1, 2):
            sent.attempts = attempt
            response, body = await _send_following(client, request, timeout, max_bytes, allow)
            if attempt == 1 and may_retry and response.status_code in RETRY_STATUSES:
                await ctx.sleep(_retry_delay(response))
                continue
            break
    except httpx.TimeoutException:
        sent.error = f"timed out after {timeout:g} s"
        raise EngineError("timeout", f"{request.method} {sent.url} timed out after {timeout:g} s") from None
    except httpx.TransportError as exc:
        sent.error = mask(str(exc) or type(exc).__name__, secrets)
        raise EngineError("network_failure", f"{request.method} {sent.url}: {sent.error}") from None
    finally:
        sent.duration_ms = (monotonic() - started) * 1000
    sent.status = response.status_code
    sent.response_headers = {k.lower(): v for k, v in response.headers.items()}
    sent.text = body.decode(response.encoding or "utf-8", errors="replace")
    return sent


def _retry_delay(response: httpx.Response) -> float:
    value = response.headers.get("Retry-After", "").strip()
    try:
        return min(max(float(value), 0.0), RETRY_AFTER_CAP_S)
    except ValueError:
        return RETRY_DEFAULT_DELAY_S


async def _send_following(
    client: httpx.AsyncClient, request: httpx.Request, timeout: float, max_bytes: int, allow: str
) -> tuple[httpx.Response, bytes]:
    """Follow redirects only within the same origin; credentials never reach another origin."""
    current = request
    for _ in range(MAX_REDIRECTS + 1):
        current.extensions["timeout"] = httpx.Timeout(timeout).as_dict()
        response = await client.send(current, stream=True)
        try:
            if response.is_redirect and "location" in response.headers:
                target = current.url.join(response.headers["location"])
                if _origin(target) != _origin(request.url):
                    raise EngineError(
                        "api_failure",
                        f"{request.method} {request.url.scheme}://{request.url.host}: redirect to another origin "
                        f"({target.scheme}://{target.host}) refused; credentials are never sent across origins",
                    )
                method = current.method if response.status_code in (307, 308) else "GET"
                content = current.content if response.status_code in (307, 308) else None
                current = httpx.Request(method, target, headers=current.headers, content=content)
                continue
            body = await _read_capped(response, max_bytes)
            return response, body
        finally:
            await response.aclose()
    raise EngineError("api_failure", f"{request.method} {request.url.host}: too many redirects")


async def _read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise EngineError("api_failure", f"response body of {int(declared)} bytes exceeds the {_size(max_bytes)} cap")
    chunks: list[bytes] = []
    total = 0
    async for chunk in response.aiter_bytes():
        total += len(chunk)
        if total > max_bytes:
            raise EngineError("api_failure", f"response body exceeds the {_size(max_bytes)} cap")
        chunks.append(chunk)
    return b"".join(chunks)


def _size(n: int) -> str:
    return f"{n // (1024 * 1024)} MiB" if n % (1024 * 1024) == 0 else f"{n} bytes"


def parse_body(sent: Sent, expect: str) -> Any:
    """The response body as JSON (default) or text; non-JSON where JSON was expected is a parse_failure."""
    if expect == "text":
        return sent.text
    if not sent.text.strip():
        raise EngineError("parse_failure", f"step {sent.step}: empty response body where JSON was expected")
    try:
        return json.loads(sent.text)
    except ValueError:
        excerpt = " ".join(sent.text.strip().split())[:80]
        ctype = sent.response_headers.get("content-type", "unknown content type")
        raise EngineError(
            "parse_failure", f"step {sent.step}: expected JSON but got {ctype}: {excerpt!r}"
        ) from None


#: Default HTTP status -> kind when no spec rule matches (CASSETTE.md's classification).
def default_kind(status: int) -> str:
    if status == 401:
        return "auth_expired"
    if status == 403:
        return "permission_denied"
    if status == 429:
        return "rate_limited"
    if status == 408:
        return "timeout"
    if 500 <= status <= 599:
        return "provider_unavailable"
    return "api_failure"


def classify(
    sent: Sent, body: Any, rules: list[Mapping[str, Any]], variables: dict[str, Any], secrets: list[str],
    accept: Any = (),
) -> EngineError | None:
    """Apply the spec's ordered `errors` rules (then the default table for non-2xx) to one response.
    Statuses in `accept` (a step's `accept_status`) count as 2xx answers."""
    rule_vars = {**variables, "status": sent.status, "headers": sent.response_headers, "body": body, "text": sent.text}
    ok = sent.status is not None and (200 <= sent.status < 300 or sent.status in accept)
    for i, rule in enumerate(rules):
        if rule.get("step") not in (None, sent.step):
            continue
        statuses = rule.get("status")
        if statuses is not None:
            wanted = statuses if isinstance(statuses, list) else [statuses]
            if sent.status not in wanted:
                continue
        elif ok and "when" not in rule:
            continue
        if "when" in rule:
            try:  # a predicate that reads a field the response lacks does not match
                matched = compile_expr(rule["when"])(rule_vars)
            except UndefinedError:
                matched = False
            except (TypeError, ValueError, KeyError, AttributeError):
                matched = False
            if not matched:
                continue
        message = rule.get("message")
        text = evaluate(compile_template(message), rule_vars, what=f"errors[{i}].message") if message else None
        return EngineError(rule["kind"], mask(text or _http_message(sent, secrets), secrets))
    if ok:
        return None
    return EngineError(default_kind(sent.status or 0), _http_message(sent, secrets))


def try_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _http_message(sent: Sent, secrets: list[str]) -> str:
    excerpt = " ".join(sent.text.strip().split())[:160]
    tail = f": {mask(excerpt, secrets)}" if excerpt else ""
    return f"{sent.method} {sent.url} -> HTTP {sent.status}{tail}"
