"""Steps stage: one spec step -> its result (a body, a list of item bodies, or a list of pages).

```yaml
- id: usage
  for_each: "projects"           # once per item, concurrently (up to `concurrency`)
  as: project
  url: "{{ base }}/projects/{{ project.project_id }}/usage"
  paginate: {param: page, next: "body.next_page if body.has_more else none", max_pages: 100}
```
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import httpx

from .context import RunContext
from .errors import EngineError
from .expr import compile_expr, evaluate
from .inputs import Resolved
from .request import Sent, classify, parse_body, render_step, send, try_json


@dataclass
class StepRun:
    """What one step needs besides its own node: the world, the HTTP client, rules, secrets, the trace."""

    ctx: RunContext
    client: httpx.AsyncClient
    resolved: Resolved
    rules: list[Mapping[str, Any]]
    url_policy: Callable[[str], str]
    trace: list[Sent] | None


async def run_step(step: Mapping[str, Any], variables: dict[str, Any], run: StepRun) -> tuple[Any, Any]:
    """(result, meta) of a step: meta is `{status, headers}` of its (last) response, or a list per item."""
    if "for_each" not in step:
        return await _paged(step, variables, run)
    items = evaluate(compile_expr(step["for_each"]), variables, what=f"step {step['id']} for_each")
    if items is None:
        items = []
    if not isinstance(items, (list, tuple)):
        raise EngineError("parse_failure", f"step {step['id']}: for_each gave {type(items).__name__}, not a list")
    limit = asyncio.Semaphore(int(step.get("concurrency", max(1, len(items)))))
    failed: list[EngineError] = []  # once an item fails the step, items not started yet are not sent

    async def one(item: Any) -> tuple[Any, Any]:
        async with limit:
            if failed:
                return None, None
            try:
                return await _paged(step, {**variables, step["as"]: item}, run)
            except EngineError as exc:
                if step.get("item_optional") and exc.kind not in step.get("fatal", []) and exc.kind != "spec_invalid":
                    return None, None
                failed.append(exc)
                raise

    pairs = await asyncio.gather(*(one(item) for item in items))
    return [p[0] for p in pairs], [p[1] for p in pairs]


async def _paged(step: Mapping[str, Any], variables: dict[str, Any], run: StepRun) -> tuple[Any, Any]:
    pager = step.get("paginate")
    if pager is None:
        return await _send_one(step, variables, run, cursor=None)
    pages: list[Any] = []
    seen: set[str] = set()
    cursor: str | None = None
    meta: Any = None
    while True:
        body, meta = await _send_one(step, variables, run, cursor=cursor)
        pages.append(body)
        nxt = evaluate(compile_expr(pager["next"]), {**variables, "body": body, "pages": pages},
                       what=f"step {step['id']} paginate.next")
        if nxt is None or nxt == "":
            return pages, meta
        cursor = str(nxt)
        if cursor in seen:
            raise EngineError("parse_failure", "Pagination cursor repeated.", step=step["id"])
        seen.add(cursor)
        if len(pages) >= pager["max_pages"]:
            if pager.get("over_max", "fail") == "stop":
                return pages, meta
            raise EngineError("parse_failure", f"more than {pager['max_pages']} pages", step=step["id"])


async def _send_one(step: Mapping[str, Any], variables: dict[str, Any], run: StepRun,
                    *, cursor: str | None) -> tuple[Any, Any]:
    """Render, send, classify and parse one request of a step."""
    request = render_step(step, variables, cursor)
    allow = "https" if request.url.scheme == "https" else run.url_policy(step["url"])
    sent = await send(run.client, run.ctx, request, step=step, secrets=run.resolved.secrets, allow=allow)
    if run.trace is not None:
        run.trace.append(sent)
    accept = step.get("accept_status", ())
    ok = sent.status is not None and (200 <= sent.status < 300 or sent.status in accept)
    body, parse_error = None, None
    if ok:
        try:
            body = parse_body(sent, step.get("response", "json"))
        except EngineError as exc:
            parse_error = exc
    else:
        body = try_json(sent.text)
    error = classify(sent, body, run.rules, variables, run.resolved.secrets, accept)
    if error is None and parse_error is not None:
        error = parse_error
    if error is not None:
        sent.error = error.message
        raise error
    return body, {"status": sent.status, "headers": sent.response_headers}
