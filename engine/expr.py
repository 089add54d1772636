"""Expressions and templates: sandboxed Jinja2 (StrictUndefined) compiled once, cached on disk, evaluated
with the run's names plus the functions of engine/functions.py.

Canonical split: JMESPath (extract.py) *selects* values from responses; a Jinja2 expression *computes*
(`percent(used, limit)`, `max(0, total - spent)`); a Jinja2 template renders request strings.
"""
from __future__ import annotations

from datetime import datetime, timezone
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, Callable

from jinja2 import FunctionLoader, StrictUndefined, TemplateSyntaxError, UndefinedError, meta
from jinja2.environment import TemplateExpression
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .errors import EngineError
from .functions import CLOCK_FUNCTIONS, FUNCTIONS, GLOBAL_NAMES, _Helpers, fixed, grouped, number, usd



_code_cache: list[Path] = []


def use_code_cache(directory: Path | None) -> None:
    """Cache compiled expression/template code under `directory` (Jinja's bytecode cache), so a CLI run does not
    recompile every expression of a spec; None turns it off."""
    _code_cache[:] = [directory] if directory is not None else []
    environment.cache_clear()
    compile_expr.cache_clear()
    compile_template.cache_clear()


def _load_source(name: str) -> tuple[str, None, Callable[[], bool]]:
    # A template's name is its source: the bytecode cache then keys compiled code by the text itself.
    return name, None, lambda: True


@lru_cache(maxsize=1)
def environment() -> ImmutableSandboxedEnvironment:
    cache = None
    if _code_cache:
        from jinja2 import FileSystemBytecodeCache

        try:
            _code_cache[0].mkdir(parents=True, exist_ok=True)
            cache = FileSystemBytecodeCache(str(_code_cache[0]))
        except OSError:
            cache = None
    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True,
                                        loader=FunctionLoader(_load_source), bytecode_cache=cache, cache_size=0)
    env.globals.clear()
    env.globals.update(FUNCTIONS)
    env.filters.update({"usd": usd, "fixed": fixed, "grouped": grouped, "number": number})
    for name, fn in FUNCTIONS.items():  # every function is also a filter: `rows | map('parse_date')`
        env.filters.setdefault(name, fn)  # Jinja's own filters (max, min, abs, ...) keep their meaning
    return env


def run_globals(now: datetime, tz: Any = timezone.utc) -> dict[str, Any]:
    helpers = _Helpers(now, tz)
    return {"now": now, **{name: getattr(helpers, name) for name in CLOCK_FUNCTIONS}}


_TAGS = ("{%", "%}", "{#", "#}")  # would end the `{% set %}` wrapper early


class Compiled:
    """A compiled expression or template; `names` (the free variables it reads) is computed on demand.

    An expression compiles as the template `{% set result = (EXPR) %}` and is read back as a native value
    (what Jinja's compile_expression does), which lets compiled code come from the bytecode cache.
    """

    def __init__(self, source: str, is_template: bool) -> None:
        env = environment()
        self.source = source
        self.is_template = is_template
        if is_template:
            self._fn: Any = env.get_template(source)
        else:
            if any(tag in source for tag in _TAGS):
                raise TemplateSyntaxError("an expression cannot contain template tags", 1)
            self._fn = TemplateExpression(env.get_template("{% set result = (" + source + ") %}"), False)

    @cached_property
    def names(self) -> frozenset[str]:
        ast = environment().parse(self.source if self.is_template else "{{ (" + self.source + ") }}")
        return frozenset(meta.find_undeclared_variables(ast))

    def __call__(self, variables: dict[str, Any]) -> Any:
        if self.is_template:
            return self._fn.render(variables)
        return self._fn(**variables)


@lru_cache(maxsize=4096)
def compile_expr(source: str) -> Compiled:
    """Compile an expression (`percent(a, b)`); raises TemplateSyntaxError."""
    return Compiled(source, is_template=False)


@lru_cache(maxsize=4096)
def compile_template(source: str) -> Compiled:
    """Compile a template (`{{ base_url }}/credits`); raises TemplateSyntaxError."""
    return Compiled(source, is_template=True)


def evaluate(compiled: Compiled, variables: dict[str, Any], *, what: str) -> Any:
    """Evaluate with spec-friendly errors: an undefined name or a type error is a `parse_failure` naming `what`."""
    try:
        return compiled(variables)
    except UndefinedError as exc:
        raise EngineError("spec_invalid", f"{what}: {exc.message} in `{compiled.source}`") from None
    except SecurityError as exc:
        raise EngineError("spec_invalid", f"{what}: not allowed in the sandbox: {exc}") from None
    except (TypeError, ValueError, ZeroDivisionError, KeyError, AttributeError, OverflowError) as exc:
        raise EngineError("parse_failure", f"{what}: cannot compute `{compiled.source}`: {exc}") from None


__all__ = ["compile_expr", "compile_template", "evaluate", "run_globals", "TemplateSyntaxError", "GLOBAL_NAMES"]
