"""Login stage: a spec's `login` block -> a credential in the OS keyring (OAuth 2.0 device flow, RFC 8628).

```yaml
login:
  type: device_flow
  device_code_url: "https://{{ host }}/login/device/code"
  token_url: "https://{{ host }}/login/oauth/access_token"
  client_id: Iv1.example
  scope: read:user
  store: {service: "engine:copilot", account: "{{ host }}"}
```
"""
from __future__ import annotations

from typing import Any, TextIO

import httpx

from .context import RunContext
from .errors import EngineError
from .expr import compile_template, evaluate
from .inputs import resolve_inputs
from .load import Spec
from .request import check_request_url
from .runner import evaluate_vars, url_policy

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"
SLOW_DOWN_EXTRA_S = 5.0


async def run_login(spec: Spec, ctx: RunContext, out: TextIO, *, max_polls: int = 360) -> str:
    """Run the device flow: print the code and URL, poll until approved, store the token; returns where it went."""
    login = spec.data.get("login")
    if not login:
        raise EngineError("unsupported", f"{spec.id} has no login flow; set its credential in the config or env")
    resolved = resolve_inputs(spec.data.get("inputs", {}), ctx, provider=spec.id)
    variables = evaluate_vars(spec, ctx, resolved)

    def url(key: str) -> httpx.URL:
        target = httpx.URL(evaluate(compile_template(login[key]), variables, what=f"login.{key}"))
        allow = "https" if target.scheme == "https" else url_policy(spec, login[key], resolved)
        check_request_url(target, allow)
        return target

    headers = {"Accept": "application/json"}
    async with ctx.http_client() as client:
        form = {"client_id": login["client_id"], **({"scope": login["scope"]} if login.get("scope") else {})}
        code = await _post(client, url("device_code_url"), form, headers)
        for key in ("device_code", "user_code", "verification_uri"):
            if not isinstance(code.get(key), str):
                raise EngineError("parse_failure", f"device code response lacks {key!r}")
        interval = float(code.get("interval") or 5)
        print(f"To sign in to {spec.name}, open {code.get('verification_uri_complete') or code['verification_uri']}"
              f"\nand enter the code: {code['user_code']}\nWaiting for approval…", file=out, flush=True)
        poll = {"client_id": login["client_id"], "device_code": code["device_code"], "grant_type": GRANT_TYPE}
        for _ in range(max_polls):
            await ctx.sleep(interval)
            answer = await _post(client, url("token_url"), poll, headers)
            error = answer.get("error")
            if isinstance(answer.get("access_token"), str) and answer["access_token"] and not error:
                account = evaluate(compile_template(login["store"]["account"]), variables, what="login.store.account")
                ctx.keyring_set(login["store"]["service"], account, answer["access_token"])
                where = f"keyring service {login['store']['service']!r}, account {account!r}"
                print(f"Signed in; the token is stored in the {where}.", file=out)
                return where
            if error == "authorization_pending":
                continue
            if error == "slow_down":
                interval += SLOW_DOWN_EXTRA_S
                continue
            if error == "expired_token":
                raise EngineError("timeout", "the device code expired before it was approved; run the login again")
            raise EngineError("auth_expired", f"sign-in failed: {error or 'no access token in the answer'}"
                              + (f" ({answer['error_description']})" if answer.get("error_description") else ""))
    raise EngineError("timeout", "gave up waiting for approval")


async def _post(client: httpx.AsyncClient, url: httpx.URL, form: dict[str, str],
                headers: dict[str, str]) -> dict[str, Any]:
    try:
        response = await client.post(url, data=form, headers=headers, timeout=15.0)
    except httpx.TimeoutException:
        raise EngineError("timeout", f"POST {url.host}{url.path} timed out") from None
    except httpx.TransportError as exc:
        raise EngineError("network_failure", f"POST {url.host}{url.path}: {exc}") from None
    if response.status_code != 200:
        raise EngineError("api_failure", f"POST {url.host}{url.path} -> HTTP {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        raise EngineError("parse_failure", f"POST {url.host}{url.path}: answer is not JSON") from None
    if not isinstance(body, dict):
        raise EngineError("parse_failure", f"POST {url.host}{url.path}: answer is not a JSON object")
    return body
