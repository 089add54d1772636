"""validate.py: every problem at once, sorted, with file:line:col, JSON path and did-you-mean."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest

from engine.errors import SpecError
from engine.load import load_spec
from engine.validate import check_spec, load_valid, validate_paths

from ..conftest import ROOT
from ..helpers import simple_spec, write_spec

INVALID = sorted((ROOT / "fixtures" / "invalid-specs").glob("*.yaml"))


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_spec_reports_expected_problem(path: Path) -> None:
    expected = path.read_text().splitlines()[0].removeprefix("# expect:").strip()
    problems = validate_paths([path])
    assert len(problems) == 1, problems
    assert expected in problems[0]
    assert problems[0].startswith(f"fixtures/invalid-specs/{path.name}:") or str(path) in problems[0]


def test_every_problem_is_reported_sorted_by_position(tmp_path: Path) -> None:
    data = simple_spec()
    strategy = data["strategies"][0]
    strategy["kind"] = "apii"
    strategy["steps"][0]["methd"] = "GET"
    strategy["usage"]["primary"]["windowMinutes"] = 300
    problems = check_spec(write_spec(tmp_path, data))
    assert len(problems) == 3
    lines = [int(p.split(":")[1]) for p in problems]
    assert lines == sorted(lines)
    assert any("'apii' is not one of" in p and "did you mean 'api'" in p for p in problems)
    assert any("unknown key 'methd'" in p and "did you mean 'method'" in p for p in problems)


def test_spec_id_must_match_file_name_in_specs_dir(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    spec = write_spec(specs, simple_spec("demo"), name="other")
    assert any("must equal the file name" in p for p in check_spec(spec))


def test_every_shipped_spec_validates() -> None:
    paths = sorted((ROOT / "specs").glob("*.yaml"))
    assert paths
    assert validate_paths(paths) == []


def test_load_valid_caches_only_valid_specs_and_revalidates_edits(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, simple_spec())
    cache = tmp_path / "cache"
    assert load_valid(spec.path, cache).data == spec.data
    entries = list((cache / "specs").iterdir())
    assert len(entries) == 1
    cached = load_valid(spec.path, cache)  # served from the cache
    assert cached.data == spec.data
    assert cached.location(("strategies", 0, "kind")) == spec.location(("strategies", 0, "kind"))
    spec.path.write_text(spec.path.read_text().replace("name: Demo", "name: 5"))  # an edit is revalidated
    with pytest.raises(SpecError) as exc:
        load_valid(spec.path, cache)
    assert "$.name" in str(exc.value) and len(list((cache / "specs").iterdir())) == 1


def test_validation_does_not_mutate_the_spec(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, simple_spec())
    before = copy.deepcopy(spec.data)
    check_spec(spec)
    assert spec.data == before
    assert load_spec(spec.path).data == before
