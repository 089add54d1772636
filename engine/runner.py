"""Run stage: pick strategies for the source mode -> inputs -> steps -> extract -> normalize -> fallback.

`fetch` runs one provider and returns an `Outcome` (result or error, plus every attempt); `fetch_many`
runs several concurrently, so one provider's failure or hang never blocks the others.
"""
from __future__ import annotations

import asyncio
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

import httpx

from .context import RunContext, monotonic
from .errors import EngineError
from .expr import compile_expr, compile_template, evaluate, run_globals
from .extract import extract_values
from .inputs import Resolved, mask, missing_hint, resolve_inputs
from .load import Spec, json_path_str
from .normalize import build_usage
from .request import Sent
from .steps import StepRun, run_step

SOURCE_MODES = ("auto", "web", "cli", "oauth", "api")
PROVIDER_TIMEOUT_S = 60.0
POLICY_RANK = {"https": 0, "https-or-loopback": 1, "https-or-private": 2}


@dataclass
class Attempt:
    strategy: str
    kind: str
    available: bool
    duration_ms: float = 0.0
    error_kind: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"strategy": self.strategy, "kind": self.kind, "available": self.available,
                               "durationMs": round(self.duration_ms, 1)}
        if self.error_kind:
            out["errorKind"] = self.error_kind
            out["error"] = self.error
        return out


@dataclass
class Trace:
    """What `engine run --trace` prints: each request (masked) and which expression produced each field."""

    requests: list[Sent] = field(default_factory=list)
    inputs: dict[str, str] = field(default_factory=dict)
    values: list[tuple[str, str, Any]] = field(default_factory=list)
    fields: list[tuple[str, str, Any]] = field(default_factory=list)


@dataclass
class Outcome:
    provider: str
    mode: str
    source: str | None = None
    usage: dict[str, Any] | None = None
    error: EngineError | None = None
    attempts: list[Attempt] = field(default_factory=list)
    account: str | None = None
    trace: Trace | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@contextmanager
def _where(spec: Spec, strategy: str | None = None, json_path: tuple[Any, ...] | None = None) -> Iterator[None]:
    """Attach provider/strategy (and the spec location for spec errors) to errors crossing this boundary."""
    try:
        yield
    except EngineError as exc:
        exc.provider = exc.provider or spec.id
        exc.strategy = exc.strategy or strategy
        if exc.kind == "spec_invalid" and json_path is not None and not exc.location:
            exc.location = spec.location(json_path)
            exc.json_path = json_path_str(json_path)
        raise


def select_strategies(spec: Spec, mode: str) -> list[tuple[int, dict[str, Any]]]:
    return [(i, s) for i, s in enumerate(spec.data.get("strategies", [])) if mode in s.get("modes", ["auto"])]


def _resolve_mode(spec: Spec, ctx: RunContext, source: str | None) -> str:
    mode = (source or ctx.config_entry(spec.id).get("source") or "auto").strip().lower()
    return mode


async def fetch(
    spec: Spec,
    ctx: RunContext,
    *,
    source: str | None = None,
    account: Mapping[str, Any] | None = None,
    client: httpx.AsyncClient | None = None,
    want_trace: bool = False,
) -> Outcome:
    """Fetch one provider: every strategy for the mode in order, falling back on the listed error kinds."""
    mode = _resolve_mode(spec, ctx, source)
    outcome = Outcome(provider=spec.id, mode=mode, account=(account or {}).get("label"))
    outcome.trace = Trace() if want_trace else None
    allowed = spec.data.get("source_modes", ["auto"])
    if mode not in allowed:
        outcome.error = EngineError(
            "unsupported", f"Source '{mode}' is not supported for {spec.cli_name}.", provider=spec.id
        )
        return outcome
    with _where(spec, json_path=("inputs",)):
        resolved = resolve_inputs(spec.data.get("inputs", {}), ctx, provider=spec.id, account=account)
    if outcome.trace:
        outcome.trace.inputs = {k: (v or "(not set)") for k, v in resolved.origins.items()}
    own_client = client is None
    client = client or ctx.http_client()
    last_error: EngineError | None = None
    variables: dict[str, Any] | None = None
    try:
        for index, strategy in select_strategies(spec, mode):
            sid, kind = strategy["id"], strategy["kind"]
            missing = [name for name in strategy.get("requires", []) if resolved.values.get(name) is None
                       and name not in resolved.policy_errors]
            if missing:
                outcome.attempts.append(Attempt(sid, kind, False, error_kind="missing_credential",
                                                error=f"not available: set {missing_hint(spec.data['inputs'], missing)}"))
                continue
            started = monotonic()
            try:
                with _where(spec, sid, ("strategies", index)):
                    if variables is None:
                        variables = evaluate_vars(spec, ctx, resolved)
                    if "when" in strategy and not evaluate(compile_expr(strategy["when"]), variables,
                                                           what=f"strategy {sid} when"):
                        outcome.attempts.append(Attempt(sid, kind, False, error="not available: `when` is false"))
                        continue
                    source = evaluate(compile_template(strategy.get("source", kind)), variables,
                                      what=f"strategy {sid} source")
                    usage = await _run_strategy(spec, index, strategy, ctx, resolved, dict(variables), client,
                                                outcome.trace)
            except EngineError as exc:
                exc.message = mask(exc.message, resolved.secrets)
                outcome.attempts.append(Attempt(sid, kind, True, (monotonic() - started) * 1000, exc.kind, exc.message))
                falls_back = exc.kind in strategy.get("fallback_on", [])
                keep_earlier = strategy.get("report_earlier_error_unless")
                if last_error is not None and keep_earlier is not None and last_error.kind not in keep_earlier:
                    exc = last_error  # e.g. openai: the admin error wins over the legacy one
                last_error = exc
                if falls_back:
                    continue
                break
            outcome.attempts.append(Attempt(sid, kind, True, (monotonic() - started) * 1000))
            outcome.source = source
            outcome.usage = usage
            return outcome
    finally:
        if own_client:
            await client.aclose()
    if last_error is None:
        hints = list(dict.fromkeys(a.error.removeprefix("not available: ") for a in outcome.attempts if a.error))
        detail = f" ({'; '.join(hints)})" if hints else ""
        last_error = EngineError("missing_credential", f"No available fetch strategy for {spec.id}.{detail}",
                                 provider=spec.id)
    outcome.error = last_error
    return outcome


def url_policy(spec: Spec, url_template: str, resolved: Resolved) -> str:
    """The most permissive URL policy among the inputs a URL template reads, directly or through vars
    (only consulted for plain-http URLs: HTTPS is always allowed)."""
    spec_vars = spec.data.get("vars", {})
    best, seen = "https", set()
    pending = list(compile_template(url_template).names)
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        policy = resolved.policies.get(name)
        if policy and POLICY_RANK[policy] > POLICY_RANK[best]:
            best = policy
        if name in spec_vars:
            pending.extend(compile_expr(spec_vars[name]).names)
    return best


async def _run_strategy(
    spec: Spec,
    index: int,
    strategy: Mapping[str, Any],
    ctx: RunContext,
    resolved: Resolved,
    variables: dict[str, Any],
    client: httpx.AsyncClient,
    trace: Trace | None,
) -> dict[str, Any]:
    base = ("strategies", index)
    if "hook" in strategy:
        from .hooks import get_hook

        return await get_hook(strategy["hook"])(spec=spec, strategy=strategy, ctx=ctx, inputs=resolved)
    results: dict[str, Any] = {}
    meta: dict[str, Any] = {}
    run = StepRun(ctx=ctx, client=client, resolved=resolved, rules=strategy.get("errors", []),
                  url_policy=lambda url: url_policy(spec, url, resolved),
                  trace=trace.requests if trace is not None else None)
    value_names = set(strategy.get("extract", {})) | set(strategy.get("compute", {}))
    for s_index, step in enumerate(strategy.get("steps", [])):
        sid = step["id"]
        step_vars = {**variables, "steps": results, "meta": meta}  # meta: earlier steps' status and headers
        if value_names & _control_names(step):
            # The step's `when`/`for_each` reads extract/compute values: evaluate them over the steps so far
            # (steps not run yet read as null).
            pending = frozenset(s["id"] for s in strategy.get("steps", [])[s_index:])
            step_vars.update(_strategy_values(spec, strategy, base, dict(variables), results, meta, None, pending))
        with _where(spec, strategy["id"], base + ("steps", s_index)):
            if "when" in step and not evaluate(compile_expr(step["when"]), step_vars, what=f"step {sid} when"):
                results[sid] = None
                continue
            try:
                results[sid], meta[sid] = await run_step(step, step_vars, run)
            except EngineError as exc:
                exc.step = exc.step or sid
                if step.get("optional") and exc.kind != "spec_invalid" and exc.kind not in step.get("fatal", []):
                    results[sid] = None
                    continue
                raise
    variables = _strategy_values(spec, strategy, base, variables, results, meta,
                                 trace.values if trace is not None else None)
    with _where(spec, strategy["id"], base + ("usage",)):
        return build_usage(strategy.get("usage", {}), variables, provider=spec.id, now=variables["now"],
                           trace=trace.fields if trace is not None else None)


def _control_names(step: Mapping[str, Any]) -> frozenset[str]:
    """Names read by a step's `when` and `for_each` (the expressions that decide whether and how often it runs)."""
    names: frozenset[str] = frozenset()
    for key in ("when", "for_each"):
        if key in step:
            names |= compile_expr(step[key]).names
    return names


def _strategy_values(spec: Spec, strategy: Mapping[str, Any], base: tuple[Any, ...], variables: dict[str, Any],
                     results: dict[str, Any], meta: dict[str, Any], values_trace: list[Any] | None,
                     pending: frozenset[str] = frozenset()) -> dict[str, Any]:
    """`variables` updated with the strategy's extract and compute values over the step results so far
    (`pending`: steps not run yet, whose values read as none)."""
    document = {**results, "meta": meta}
    with _where(spec, strategy["id"], base + ("extract",)):
        variables.update(extract_values(strategy.get("extract", {}), document, trace=values_trace,
                                        pending=pending))
    for name, source in strategy.get("compute", {}).items():
        with _where(spec, strategy["id"], base + ("compute", name)):
            variables[name] = _compute(name, source, variables)
            if values_trace is not None:
                values_trace.append((name, source if isinstance(source, str) else source["value"], variables[name]))
    return variables


def evaluate_vars(spec: Spec, ctx: RunContext, resolved: Resolved) -> dict[str, Any]:
    """Inputs plus `vars`, computed once per fetch, before any request (endpoint overrides fail closed first)."""
    for err in resolved.policy_errors.values():
        raise err
    variables: dict[str, Any] = {**run_globals(ctx.now(), ctx.tz), **resolved.values}
    for name, source in spec.data.get("vars", {}).items():
        with _where(spec, None, ("vars", name)):
            variables[name] = evaluate(compile_expr(source), variables, what=f"vars.{name}")
    return variables


def _compute(name: str, source: Any, variables: dict[str, Any]) -> Any:
    """A compute entry: an expression, or `{for_each, as, value, where?}` mapping a list item by item."""
    if isinstance(source, str):
        return evaluate(compile_expr(source), variables, what=f"compute.{name}")
    items = evaluate(compile_expr(source["for_each"]), variables, what=f"compute.{name}.for_each") or []
    out = []
    for item in items:
        scope = {**variables, source["as"]: item}
        if "where" in source and not evaluate(compile_expr(source["where"]), scope, what=f"compute.{name}.where"):
            continue
        out.append(evaluate(compile_expr(source["value"]), scope, what=f"compute.{name}.value"))
    return out


async def fetch_many(
    specs: list[Spec],
    ctx: RunContext,
    *,
    source: str | None = None,
    accounts: Mapping[str, list[Mapping[str, Any] | None]] | None = None,
    timeout_s: float = PROVIDER_TIMEOUT_S,
) -> list[Outcome]:
    """Fetch providers concurrently (a client each, see RunContext.http_client); results keep the input order."""

    async def one(spec: Spec, account: Mapping[str, Any] | None) -> Outcome:
        try:
            return await asyncio.wait_for(fetch(spec, ctx, source=source, account=account), timeout_s)
        except asyncio.TimeoutError:
            mode = _resolve_mode(spec, ctx, source)
            return Outcome(spec.id, mode, account=(account or {}).get("label"),
                           error=EngineError("timeout", f"{spec.id} usage timed out", provider=spec.id))
        except Exception as exc:  # noqa: BLE001 - one provider's crash must not sink the others
            mode = _resolve_mode(spec, ctx, source)
            return Outcome(spec.id, mode, error=EngineError("api_failure", f"internal error: {exc!r}",
                                                            provider=spec.id))

    jobs = []
    for spec in specs:
        for account in (accounts or {}).get(spec.id, [None]):
            jobs.append(one(spec, account))
    return list(await asyncio.gather(*jobs))
