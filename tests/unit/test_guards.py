"""Guard tests: schema is strict and documented, dispatch tables equal schema enums, API complete, codegen fresh."""
from __future__ import annotations

import json
import subprocess
import sys

import jsonschema
import pytest

import engine
from engine import extract, inputs, request
from engine._generated import enums

from ..conftest import ROOT

SCHEMAS = sorted((ROOT / "schemas").glob("*.schema.json"))
KNOWN_KEYWORDS = {
    "$schema", "$id", "$ref", "$defs", "title", "description", "examples", "type", "properties", "required",
    "additionalProperties", "items", "enum", "const", "pattern", "minLength", "minItems", "uniqueItems", "oneOf",
    "anyOf", "allOf", "not", "if", "then", "minimum", "maximum", "exclusiveMinimum", "minProperties",
    "maxProperties", "propertyNames", "format", "x-template-vars", "x-kind",
}


def _walk(node, path="$"):  # noqa: ANN001, ANN202
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            if key in ("properties", "$defs"):
                for name, sub in value.items():
                    yield from _walk(sub, f"{path}.{key}.{name}")
            elif key in ("examples", "enum", "const", "required", "x-template-vars", "default"):
                continue
            else:
                yield from _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _walk(item, f"{path}[{i}]")


@pytest.mark.parametrize("path", SCHEMAS, ids=[p.name for p in SCHEMAS])
def test_schema_passes_meta_schema_and_uses_only_known_keywords(path) -> None:  # noqa: ANN001
    schema = json.loads(path.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    for where, node in _walk(schema):
        unknown = set(node) - KNOWN_KEYWORDS
        assert not unknown, f"{path.name} {where}: unknown keywords {unknown}"


def test_spec_schema_is_closed_and_documented() -> None:
    schema = json.loads((ROOT / "schemas" / "spec.schema.json").read_text())
    for name, d in schema["$defs"].items():
        assert d.get("title") and d.get("description") and d.get("examples"), name
        if d.get("type") == "object":
            assert d.get("additionalProperties") is False, name
    for where, node in _walk(schema):
        if node.get("type") == "object" and "properties" in node:
            assert "additionalProperties" in node, where


def test_dispatch_tables_equal_schema_enums() -> None:
    assert tuple(request.AUTH_KINDS) == enums.AUTH_KINDS
    assert tuple(extract.TYPES) == enums.EXTRACT_TYPES
    assert sorted(inputs.SOURCE_KINDS) == sorted(enums.INPUT_SOURCE_KINDS)
    assert inputs.POLICIES == enums.URL_POLICIES
    assert engine.FETCH_KINDS == enums.ERROR_KINDS


def test_public_api_is_complete() -> None:
    import types

    # dir(): the names imported on first use (engine.__getattr__) count too
    public = {name for name in dir(engine)
              if not name.startswith("_") and not isinstance(getattr(engine, name), types.ModuleType)
              and name != "annotations"}
    assert public == set(engine.__all__)
    assert all(hasattr(engine, name) for name in engine.__all__)


def test_generated_files_are_fresh() -> None:
    result = subprocess.run([sys.executable, "-m", "codegen", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_engine_never_reads_the_real_world_outside_the_context() -> None:
    forbidden = ("os.environ", "Path.home()", "datetime.now(", "subprocess.", "httpx.Client(", "httpx.AsyncClient(")
    allowed = {"context.py", "host.py", "cli.py"}
    for path in (ROOT / "engine").rglob("*.py"):
        if path.name in allowed or "cost" in path.parts:
            continue
        text = path.read_text()
        for token in forbidden:
            assert token not in text, f"{path.relative_to(ROOT)} uses {token}"
