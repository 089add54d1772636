"""Extract stage: step results -> named values, by JMESPath, with types and required/optional rules.

```yaml
extract:
  total:     {path: credits.data.total_credits, type: number}
  key_limit: {path: key.data.limit, type: number, optional: true}
```
The JMESPath root holds each step's parsed body under its id, plus `meta.<step>.status` and
`meta.<step>.headers.<lower-case name>`.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Callable, Mapping

import jmespath
from jmespath.parser import ParsedResult

from .errors import EngineError
from .functions import _num

MISSING = object()


@lru_cache(maxsize=4096)
def compile_path(source: str) -> ParsedResult:
    return jmespath.compile(source)


def _as_number(v: Any) -> Any:
    return _num(v)


def _as_integer(v: Any) -> Any:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(v, float) and not v.is_integer()):
        raise ValueError(f"expected an integer, got {v!r}")
    return int(v)


def _as_string(v: Any) -> Any:
    if not isinstance(v, (str, int, float)) or isinstance(v, bool):
        raise ValueError(f"expected a string, got {type(v).__name__}")
    return str(v)


def _as_boolean(v: Any) -> Any:
    if not isinstance(v, bool):
        raise ValueError(f"expected true/false, got {v!r}")
    return v


def _as_object(v: Any) -> Any:
    if not isinstance(v, dict):
        raise ValueError(f"expected an object, got {type(v).__name__}")
    return v


def _as_array(v: Any) -> Any:
    if not isinstance(v, list):
        raise ValueError(f"expected an array, got {type(v).__name__}")
    return v


#: Value types of an `extract` entry; keys equal the schema's enum (a test checks it).
TYPES: dict[str, Callable[[Any], Any]] = {
    "any": lambda v: v,
    "number": _as_number,
    "integer": _as_integer,
    "string": _as_string,
    "boolean": _as_boolean,
    "object": _as_object,
    "array": _as_array,
}


def extract_values(
    extract: Mapping[str, Mapping[str, Any]], document: Mapping[str, Any], *, trace: list[Any] | None = None,
    pending: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """Evaluate each entry; a missing required value or a wrong type is a `parse_failure` naming the expression.

    Entries that read a step in `pending` (not run yet) are none instead of failing.
    """
    out: dict[str, Any] = {}
    for name, entry in extract.items():
        path = entry["path"]
        raw = compile_path(path).search(document)
        step = path.split(".", 1)[0].split("[", 1)[0]
        if raw is None:
            if "default" in entry:
                value = entry["default"]
            elif entry.get("optional") or step in pending:
                value = None
            else:
                raise EngineError(
                    "parse_failure", f"extract {name}: `{path}` found nothing in the response", step=step
                )
        else:
            try:
                value = TYPES[entry.get("type", "any")](raw)
            except ValueError as exc:
                raise EngineError("parse_failure", f"extract {name}: `{path}`: {exc}", step=step) from None
        out[name] = value
        if trace is not None:
            trace.append((name, path, value))
    return out
