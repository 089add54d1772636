"""Validate stage: spec data -> every problem at once, sorted, as `file:line:col $.path: message`.

Checks the JSON Schema (schemas/spec.schema.json) and what it cannot: JMESPath and Jinja2 compile,
referenced names, steps, inputs and hooks exist.
"""
from __future__ import annotations

import json
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

from .cache import entry_path, read_entry, write_entry
from .errors import EngineError, SpecError
from .load import SCHEMAS_DIR, Spec, json_path_str, load_spec

Problem = tuple[tuple[int, int], str]


@lru_cache(maxsize=None)
def schema(name: str = "spec") -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCHEMAS_DIR / f"{name}.schema.json").read_text(encoding="utf-8"))
    return loaded


@lru_cache(maxsize=None)
def validator(name: str = "spec") -> Any:
    """A validator built once; local `$ref`s are inlined first (the spec schema is not recursive), which makes
    validation several times faster than resolving references on every node."""
    import jsonschema  # off the hot path: only when a spec is (re)validated

    raw = schema(name)
    cls = jsonschema.validators.validator_for(raw)
    return cls(_inline_refs(raw, raw.get("$defs", {})), format_checker=cls.FORMAT_CHECKER)


def _inline_refs(node: Any, defs: dict[str, Any], depth: int = 0) -> Any:
    if depth > 32:
        raise ValueError("recursive $ref: cannot inline")
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            target = _inline_refs(defs[ref.removeprefix("#/$defs/")], defs, depth + 1)
            rest = {k: _inline_refs(v, defs, depth) for k, v in node.items() if k != "$ref"}
            return {**target, **rest} if rest else target
        return {k: (v if k == "$defs" else _inline_refs(v, defs, depth)) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline_refs(v, defs, depth) for v in node]
    return node


def _did_you_mean(word: str, options: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _schema_message(error: Any) -> tuple[tuple[Any, ...], str]:
    """A readable message for one jsonschema error, descending into oneOf/anyOf to the best sub-error."""
    import jsonschema

    if error.validator in ("oneOf", "anyOf") and error.context:
        best = jsonschema.exceptions.best_match(error.context)
        return _schema_message(best)
    path = tuple(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = sorted((error.schema.get("properties") or {}).keys())
        extras = [k for k in error.instance if k not in allowed] if isinstance(error.instance, dict) else []
        if extras:
            key = extras[0]
            hint = _did_you_mean(key, allowed)
            allowed_text = ", ".join(allowed) if allowed else "none"
            return path + (key,), f"unknown key {key!r}{hint}; allowed: {allowed_text}"
    if error.validator == "enum":
        options = [str(o) for o in error.validator_value]
        return path, f"{error.instance!r} is not one of {', '.join(options)}{_did_you_mean(str(error.instance), options)}"
    if error.validator == "propertyNames" and error.context:
        return path + (error.context[0].instance,), f"invalid name {error.context[0].instance!r}: {error.context[0].message}"
    return path, error.message


def check_spec(spec: Spec) -> list[str]:
    """All problems in one spec, sorted by file position."""
    problems: list[Problem] = []

    def add(path: tuple[Any, ...], message: str) -> None:
        loc = spec.location(path)
        _, line, col = loc.rsplit(":", 2)
        problems.append(((int(line), int(col)), f"{loc} {json_path_str(path)}: {message}"))

    schema_ok = True
    for error in validator("spec").iter_errors(spec.data):
        schema_ok = False
        path, message = _schema_message(error)
        add(path, message)
    if schema_ok:
        for path, message in _semantic(spec):
            add(path, message)
    if spec.path.stem != spec.id and spec.path.parent.name == "specs":
        add(("id",), f"id {spec.id!r} must equal the file name {spec.path.stem!r}")
    problems.sort()
    return [message for _, message in problems]


def _compile(kind: str, source: str) -> tuple[frozenset[str] | None, str | None]:
    from jinja2 import TemplateSyntaxError

    from .expr import compile_expr, compile_template

    try:
        compiled = compile_template(source) if kind == "template" else compile_expr(source)
    except TemplateSyntaxError as exc:
        return None, f"{kind} does not compile: {exc.message}"
    return compiled.names, None


def _semantic(spec: Spec) -> Iterator[tuple[tuple[Any, ...], str]]:
    import jmespath

    from .expr import GLOBAL_NAMES
    from .hooks import REGISTRY

    data = spec.data
    inputs = set(data.get("inputs", {}))
    scope = set(inputs) | set(GLOBAL_NAMES)

    def check(path: tuple[Any, ...], kind: str, source: Any, names: set[str], label: str) -> None:
        if not isinstance(source, str):
            return
        found, error = _compile(kind, source)
        if error:
            problems.append((path, error))
            return
        for name in sorted((found or frozenset()) - names):
            hint = _did_you_mean(name, sorted(names - set(GLOBAL_NAMES)) + sorted(GLOBAL_NAMES))
            problems.append((path, f"{label} reads undefined name {name!r}{hint}"))

    problems: list[tuple[tuple[Any, ...], str]] = []
    for name, source in data.get("vars", {}).items():
        if name in scope:
            problems.append((("vars", name), f"name {name!r} is already defined"))
        check(("vars", name), "expression", source, scope, "var")
        scope.add(name)
    base_scope = set(scope)
    login = data.get("login")
    if login:
        for key in ("device_code_url", "token_url"):
            check(("login", key), "template", login.get(key), base_scope, f"login {key}")
        check(("login", "store", "account"), "template", login.get("store", {}).get("account"), base_scope,
              "login store.account")
    earlier_inputs = set(GLOBAL_NAMES)
    for name, decl in data.get("inputs", {}).items():
        for i, source in enumerate(decl.get("from", [])):
            if "keyring" in source:  # the account may read inputs declared before this one
                check(("inputs", name, "from", i, "keyring", "account"), "template", source["keyring"].get("account"),
                      earlier_inputs, "keyring account")
            if "file" in source:
                try:
                    jmespath.compile(source["file"]["json"])
                except jmespath.exceptions.ParseError as exc:
                    problems.append((("inputs", name, "from", i, "file", "json"), f"JMESPath does not compile: {exc.msg}"))
        earlier_inputs.add(name)
    for si, strategy in enumerate(data.get("strategies", [])):
        sp = ("strategies", si)
        for name in strategy.get("requires", []):
            if name not in inputs:
                problems.append((sp + ("requires",), f"requires unknown input {name!r}{_did_you_mean(name, sorted(inputs))}"))
        check(sp + ("when",), "expression", strategy.get("when"), base_scope, f"strategy {strategy['id']} when")
        check(sp + ("source",), "template", strategy.get("source"), base_scope, f"strategy {strategy['id']} source")
        if "hook" in strategy and strategy["hook"] not in REGISTRY:
            problems.append((sp + ("hook",), f"unknown hook {strategy['hook']!r}; known: {', '.join(sorted(REGISTRY)) or 'none'}"))
        step_ids: list[str] = []
        # A step's when/for_each may also read the strategy's extract/compute values (over the steps so far).
        value_names = set(strategy.get("extract", {})) | set(strategy.get("compute", {}))
        for ti, step in enumerate(strategy.get("steps", [])):
            tp = sp + ("steps", ti)
            if step["id"] in step_ids:
                problems.append((tp + ("id",), f"duplicate step id {step['id']!r}"))
            tscope = base_scope | {"steps", "meta"}
            if "for_each" in step:
                check(tp + ("for_each",), "expression", step["for_each"], tscope | value_names,
                      f"step {step['id']} for_each")
                tscope = tscope | {step["as"]}
            if "paginate" in step:
                check(tp + ("paginate", "next"), "expression", step["paginate"]["next"], tscope | {"body", "pages"},
                      f"step {step['id']} paginate.next")
            for key in ("url",):
                check(tp + (key,), "template", step.get(key), tscope, f"step {step['id']} {key}")
            for block in ("query", "headers", "form"):
                for k, v in step.get(block, {}).items():
                    check(tp + (block, k), "template", v, tscope, f"step {step['id']} {block}.{k}")
            for k, v in step.get("auth", {}).items():
                if k not in ("type", "name"):
                    check(tp + ("auth", k), "template", v, tscope, f"step {step['id']} auth.{k}")
            for path, value in _strings(step.get("json"), tp + ("json",)):
                kind = "expression" if path[-1] == "$expr" else "template"  # {$expr: ...} is a typed value
                check(path, kind, value, tscope, f"step {step['id']} json")
            if "when" in step:
                check(tp + ("when",), "expression", step["when"], tscope | value_names, f"step {step['id']} when")
            step_ids.append(step["id"])
        rule_scope = base_scope | {"status", "headers", "body", "text"}
        for ri, rule in enumerate(strategy.get("errors", [])):
            rp = sp + ("errors", ri)
            if "step" in rule and rule["step"] not in step_ids:
                problems.append((rp + ("step",), f"unknown step {rule['step']!r}{_did_you_mean(rule['step'], step_ids)}"))
            check(rp + ("when",), "expression", rule.get("when"), rule_scope, "error rule when")
            check(rp + ("message",), "template", rule.get("message"), rule_scope, "error rule message")
        sscope = set(base_scope)
        for name, entry in strategy.get("extract", {}).items():
            ep = sp + ("extract", name)
            if name in sscope:
                problems.append((ep, f"name {name!r} is already defined"))
            try:
                jmespath.compile(entry["path"])
            except jmespath.exceptions.ParseError as exc:
                problems.append((ep + ("path",), f"JMESPath does not compile: {exc.msg}"))
            else:
                root = re.match(r"[A-Za-z_][A-Za-z0-9_]*", entry["path"])
                if root and root.group(0) not in step_ids and root.group(0) != "meta" and "hook" not in strategy:
                    problems.append((ep + ("path",), f"reads unknown step {root.group(0)!r}{_did_you_mean(root.group(0), step_ids)}"))
            sscope.add(name)
        for name, entry in strategy.get("compute", {}).items():
            cp = sp + ("compute", name)
            if name in sscope:
                problems.append((cp, f"name {name!r} is already defined"))
            if isinstance(entry, str):
                check(cp, "expression", entry, sscope, f"compute {name}")
            else:
                check(cp + ("for_each",), "expression", entry["for_each"], sscope, f"compute {name}")
                inner = sscope | {entry["as"]}
                for key in ("where", "value"):
                    check(cp + (key,), "expression", entry.get(key), inner, f"compute {name}.{key}")
            sscope.add(name)
        for path, value in _usage_exprs(strategy.get("usage", {}), sp + ("usage",)):
            check(path, "expression", value, sscope, "usage")
        for wi, named in enumerate(strategy.get("usage", {}).get("extra_windows", [])):
            for key in ("id", "title"):
                check(sp + ("usage", "extra_windows", wi, key), "template", named.get(key), sscope, f"extra window {key}")
    return iter(problems)


def _strings(value: Any, path: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, path + (i,))
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, path + (k,))


def _usage_exprs(usage: dict[str, Any], path: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], str]]:
    for key, value in usage.items():
        if key == "extra_windows":
            for i, item in enumerate(value):
                for k, v in item.items():
                    if k not in ("id", "title", "usageKnown"):
                        yield path + (key, i, k), v
        elif isinstance(value, dict):
            for k, v in value.items():
                yield path + (key, k), v
        else:
            yield path + (key,), value


def validate_paths(paths: list[Path]) -> list[str]:
    """Every problem in every file (YAML errors included), in file then position order."""
    out: list[str] = []
    for path in paths:
        try:
            spec = load_spec(path)
        except EngineError as exc:
            out.append(f"{exc.location or path}: {exc.message}")
            continue
        out.extend(check_spec(spec))
    return out


def load_valid(path: Path, cache_dir: Path | None) -> Spec:
    """A spec that passed validation: from the compiled-spec cache when this exact text (and engine) already
    passed, else parsed, validated (every problem raised at once as SpecError) and cached.

    The cache holds the parsed data (marshal: no YAML parse, no schema run on the hot path), keyed by a hash of
    the file's bytes plus the schema and validator versions, so an edited spec is always revalidated.
    """
    raw = path.read_bytes()
    entry = None
    if cache_dir is not None:
        entry = entry_path(cache_dir, "specs", raw + _engine_fingerprint().encode(), prefix=f"{path.stem}-")
        data = read_entry(entry)
        if isinstance(data, dict):
            return Spec(id=str(data.get("id", path.stem)), data=data, path=path, text=raw.decode("utf-8"))
    spec = load_spec(path)
    problems = check_spec(spec)
    if problems:
        raise SpecError(problems, provider=spec.id)
    if entry is not None:
        write_entry(entry, spec.data)
    return spec


@lru_cache(maxsize=1)
def _engine_fingerprint() -> str:
    """Changes whenever the schema or the engine's validator changes, invalidating cached verdicts."""
    parts = []
    for path in (SCHEMAS_DIR / "spec.schema.json", Path(__file__), Path(__file__).with_name("expr.py")):
        stat = os.stat(path)
        parts.append(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}")
    return "|".join(parts)
