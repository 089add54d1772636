"""Inputs stage: spec `inputs` + RunContext -> resolved values (env, config, token account, default).

```yaml
inputs:
  token:    {secret: true, from: [{config: apiKey}, {env: OPENROUTER_API_KEY}]}
  base_url: {policy: https, from: [{env: OPENROUTER_API_URL}, {default: "https://openrouter.ai/api/v1"}]}
```
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit, urlunsplit

from .context import RunContext
from .errors import EngineError

POLICIES = ("https", "https-or-loopback", "https-or-private")


def sanitize(value: Any) -> str | None:
    """CodexBar's string sanitizing: trim, drop one pair of wrapping quotes, blank -> None."""
    if value is None:
        return None
    s = str(value).strip()
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "\"'":
        s = s[1:-1].strip()
    return s or None


@dataclass
class Resolved:
    """Resolved inputs: values, where each came from, secrets to mask, and deferred policy errors."""

    values: dict[str, Any] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)
    policy_errors: dict[str, EngineError] = field(default_factory=dict)
    policies: dict[str, str] = field(default_factory=dict)


def _from_env(ctx: RunContext, arg: str, account: Mapping[str, Any] | None, entry: Mapping[str, Any]) -> Any:
    return sanitize(ctx.env.get(arg))


def _from_config(ctx: RunContext, arg: str, account: Mapping[str, Any] | None, entry: Mapping[str, Any]) -> Any:
    return sanitize(entry.get(arg))


def _from_account(ctx: RunContext, arg: str, account: Mapping[str, Any] | None, entry: Mapping[str, Any]) -> Any:
    return sanitize(account.get(arg)) if account else None


def _from_file(ctx: RunContext, arg: Mapping[str, str], account: Mapping[str, Any] | None,
               entry: Mapping[str, Any]) -> Any:
    """A value from a JSON file under home (`codebuff login`'s credentials); unreadable or invalid -> absent."""
    import json

    from .extract import compile_path

    try:
        data = json.loads((ctx.home / arg["path"]).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = compile_path(arg["json"]).search(data)
    return sanitize(value) if isinstance(value, (str, int, float)) and not isinstance(value, bool) else None


def _from_keyring(ctx: RunContext, arg: Mapping[str, str], account: Mapping[str, Any] | None,
                  entry: Mapping[str, Any]) -> Any:
    return sanitize(ctx.keyring_get(arg["service"], arg["account"])) if arg["account"] else None


def _from_default(ctx: RunContext, arg: Any, account: Mapping[str, Any] | None, entry: Mapping[str, Any]) -> Any:
    return arg


#: Source kinds of an input's `from` chain; keys equal the schema's source kinds (a test checks it).
SOURCE_KINDS: dict[str, Callable[..., Any]] = {
    "env": _from_env,
    "config": _from_config,
    "account": _from_account,
    "file": _from_file,
    "keyring": _from_keyring,
    "default": _from_default,
}


def describe_source(source: Mapping[str, Any]) -> str:
    kind, arg = next(iter(source.items()))
    if kind == "file":
        return f"file ~/{arg['path']}"
    if kind == "keyring":
        return f"keyring {arg['service']}"
    return {"env": f"env {arg}", "config": f"config {arg}", "account": f"token account {arg}"}.get(kind, "default")


def resolve_inputs(
    spec_inputs: Mapping[str, Any],
    ctx: RunContext,
    *,
    provider: str,
    account: Mapping[str, Any] | None = None,
) -> Resolved:
    """Walk each input's source chain; the first non-empty value wins. Policy violations are recorded,
    not raised, so that they fail the strategy that would send the value (before any request)."""
    entry = ctx.config_entry(provider)
    out = Resolved()
    for name, decl in spec_inputs.items():
        value: Any = None
        origin = ""
        for source in decl.get("from", []):
            kind, arg = next(iter(source.items()))
            if kind == "keyring" and "{" in arg["account"]:
                # e.g. `{{ url_host(enterprise_host) or 'github.com' }}`: a template over the inputs declared earlier
                from .expr import compile_template, evaluate

                arg = {**arg, "account": evaluate(compile_template(arg["account"]), dict(out.values),
                                                  what=f"inputs.{name} keyring account").strip()}
            value = SOURCE_KINDS[kind](ctx, arg, account, entry)
            if value is not None:
                origin = describe_source(source)
                break
        policy = decl.get("policy")
        if policy:
            out.policies[name] = policy
        if value is not None and policy:
            try:
                value = check_url(str(value), policy)
            except ValueError as exc:
                if decl.get("on_invalid") == "absent":  # only disables what reads it (e.g. an optional request)
                    value = None
                    out.values[name] = None
                    out.origins[name] = f"{origin} (invalid: {exc})"
                    continue
                out.policy_errors[name] = EngineError(
                    "api_failure",
                    f"invalid endpoint override {origin.removeprefix('env ').removeprefix('config ')}: {exc}; "
                    f"nothing was sent",
                    provider=provider,
                )
                value = None
        out.values[name] = value
        out.origins[name] = origin
        if decl.get("secret") and isinstance(value, str):
            out.secrets.append(value)
    return out


_BAD_HOST = re.compile(r"[%\s/\\?#@:\x00-\x1f\x7f]")


def check_url(raw: str, policy: str) -> str:
    """Normalize and validate an endpoint URL under `policy`; raises ValueError naming what is wrong.

    No scheme -> `https://`; user-info, empty or unclean hosts are refused; `http://` is allowed only for
    loopback hosts (`https-or-loopback`) or loopback/private hosts (`https-or-private`).
    """
    value = raw.strip()
    if "://" not in value:
        value = "https://" + value
    parts = urlsplit(value)
    scheme = parts.scheme.lower()
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise ValueError("must not contain user-info (user:password@)")
    host = parts.hostname or ""
    if not host:
        raise ValueError("has no host")
    bare = host[1:-1] if host.startswith("[") else host
    if parts.netloc.startswith("[") or ":" in bare:
        try:
            ipaddress.IPv6Address(bare)
        except ValueError:
            raise ValueError(f"host {host!r} is not a clean host name") from None
    elif _BAD_HOST.search(bare) or "%2f" in bare.lower() or "%40" in bare.lower():
        raise ValueError(f"host {host!r} is not a clean host name")
    try:
        _ = parts.port
    except ValueError:
        raise ValueError("has an invalid port") from None
    if scheme == "https":
        pass
    elif scheme == "http":
        if policy == "https":
            raise ValueError("must use https:// (plain http is not allowed for this endpoint)")
        if not is_local_host(bare, allow_private=(policy == "https-or-private")):
            allowed = "loopback" if policy == "https-or-loopback" else "loopback or private-network"
            raise ValueError(f"http:// is only allowed for {allowed} hosts")
    else:
        raise ValueError(f"scheme {scheme!r} is not allowed (use https://)")
    return urlunsplit((scheme, parts.netloc, parts.path, parts.query, parts.fragment))


def is_local_host(host: str, *, allow_private: bool) -> bool:
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_loopback or (allow_private and ip.is_private)


def missing_hint(spec_inputs: Mapping[str, Any], names: list[str]) -> str:
    """'set OPENROUTER_API_KEY or config apiKey' for the inputs in `names`."""
    parts = []
    for name in names:
        options = [describe_source(s) for s in spec_inputs.get(name, {}).get("from", []) if "default" not in s]
        parts.append(" or ".join(options) if options else name)
    return "; ".join(parts)


def mask(text: str, secrets: list[str]) -> str:
    """Replace every secret value (4+ characters) in `text` with `****`."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        if secret and len(secret) >= 4:
            text = text.replace(secret, masked(secret))
    return text


def masked(secret: str) -> str:
    return "****"
