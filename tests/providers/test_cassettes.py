"""Replay every cassette in fixtures/<provider>/<case>.yaml: compare with `expect`, validate, snapshot."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from syrupy.extensions.json import JSONSnapshotExtension

from engine.cassette import load_cassette, subset_mismatches
from engine.cli import main

from ..conftest import ROOT, snapshot_schema_validator

CASSETTES = sorted(p for p in (ROOT / "fixtures").glob("*/*.yaml") if p.parent.name != "invalid-specs")
# Test ids are `<provider>.<case>` (not `/`: syrupy names each JSON snapshot file after the id).
IDS = [f"{p.parent.name}.{p.stem}" for p in CASSETTES]
VALIDATOR = snapshot_schema_validator()


def run_cassette(path: Path) -> tuple[int, dict, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["run", load_cassette(path)["provider"], "--cassette", str(path), "--format", "json"],
                stdout=out, stderr=err)
    return code, json.loads(out.getvalue()), err.getvalue()


@pytest.fixture
def snapshot_json(snapshot):  # noqa: ANN001, ANN201
    return snapshot.use_extension(JSONSnapshotExtension)


@pytest.mark.parametrize("path", CASSETTES, ids=IDS)
def test_cassette(path: Path, snapshot_json) -> None:  # noqa: ANN001
    cassette = load_cassette(path)
    code, output, _ = run_cassette(path)
    problems = subset_mismatches(cassette["expect"], output)
    assert not problems, "\n".join(problems)
    errors = sorted(VALIDATOR.iter_errors(output), key=str)
    assert not errors, "\n".join(e.message for e in errors)
    assert (code == 0) == ("error" not in cassette["expect"])
    assert output == snapshot_json


@pytest.mark.parametrize("path", CASSETTES, ids=IDS)
def test_cassette_secrets_never_leak(path: Path) -> None:
    """No secret-looking env value of the cassette appears in the output or the trace."""
    cassette = load_cassette(path)
    secrets = [str(v) for k, v in (cassette.get("env") or {}).items()
               if any(h in k for h in ("KEY", "TOKEN", "SECRET")) and len(str(v)) >= 4]
    secrets += [str(v) for k, v in (cassette.get("config") or {}).items() if k in ("apiKey", "secretKey")]
    out, err = io.StringIO(), io.StringIO()
    main(["run", cassette["provider"], "--cassette", str(path), "--format", "json", "--trace"], stdout=out, stderr=err)
    for secret in secrets:
        assert secret not in out.getvalue() + err.getvalue()


def test_every_provider_has_four_cases() -> None:
    specs = sorted(p.stem for p in (ROOT / "specs").glob("*.yaml"))
    for pid in specs:
        cases = list((ROOT / "fixtures" / pid).glob("*.yaml"))
        assert len(cases) >= 4, f"{pid}: {len(cases)} cassettes"
        kinds = {load_cassette(c)["expect"].get("error", {}).get("kind") for c in cases}
        assert None in kinds and "missing_credential" in kinds, f"{pid}: needs a success and a missing-credential case"
        assert kinds - {None, "missing_credential"}, f"{pid}: needs a failure case"
