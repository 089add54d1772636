"""Load stage: YAML spec files -> `Spec` (plain data plus lazily computed line marks)."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Iterator

from .errors import EngineError

ROOT = Path(__file__).resolve().parent.parent
SPECS_DIR = ROOT / "specs"
SCHEMAS_DIR = ROOT / "schemas"
FIXTURES_DIR = ROOT / "fixtures"

JsonPath = tuple[Any, ...]


@dataclass
class Spec:
    """One provider spec: its data exactly as written, where it came from, and its line marks."""

    id: str
    data: dict[str, Any]
    path: Path
    text: str = field(repr=False)

    @cached_property
    def marks(self) -> dict[JsonPath, tuple[int, int]]:
        return yaml_marks(self.text)

    def location(self, json_path: JsonPath) -> str:
        """`specs/x.yaml:line:col` of the deepest node of `json_path` that exists."""
        path = tuple(json_path)
        while path and path not in self.marks:
            path = path[:-1]
        line, col = self.marks.get(path, (1, 1))
        return f"{display_path(self.path)}:{line}:{col}"

    @property
    def name(self) -> str:
        return str(self.data.get("name", self.id))

    @property
    def cli_name(self) -> str:
        return str(self.data.get("cli_name", self.id))

    @property
    def aliases(self) -> list[str]:
        return list(self.data.get("aliases", []))


def display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        try:
            return str(path.resolve().relative_to(ROOT))
        except ValueError:
            return str(path)


def json_path_str(path: JsonPath) -> str:
    out = "$"
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _yaml() -> tuple[Any, Any]:
    """pyyaml and its fastest safe loader, imported on first use (specs usually come from the compiled cache)."""
    import yaml

    return yaml, getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C loader is ~10x faster


def parse_yaml(text: str, path: Path) -> Any:
    """Parse YAML; a syntax error becomes a clear `spec_invalid` with file:line:col, never a traceback."""
    yaml, _Loader = _yaml()
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{display_path(path)}:{mark.line + 1}:{mark.column + 1}" if mark else display_path(path)
        raise EngineError("spec_invalid", f"invalid YAML: {exc.problem or exc}", location=where) from None
    except yaml.YAMLError as exc:
        raise EngineError("spec_invalid", f"invalid YAML: {exc}", location=display_path(path)) from None


def yaml_marks(text: str) -> dict[JsonPath, tuple[int, int]]:
    """Map each JSON path in a YAML document to its 1-based (line, column); keys map to the key's mark."""
    marks: dict[JsonPath, tuple[int, int]] = {}
    yaml, _Loader = _yaml()
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError:
        return marks

    def walk(node: Any, path: JsonPath) -> None:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                child = path + (key_node.value,)
                marks[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                walk(value_node, child)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                marks[path + (i,)] = (item.start_mark.line + 1, item.start_mark.column + 1)
                walk(item, path + (i,))

    if root is not None:
        marks[()] = (root.start_mark.line + 1, root.start_mark.column + 1)
        walk(root, ())
    return marks


_cache: dict[Path, tuple[float, Spec]] = {}


def load_spec(path_or_id: str | Path, specs_dir: Path | None = None) -> Spec:
    """Load `specs/<id>.yaml` (or a path) as a `Spec`, cached per file modification time."""
    path = Path(path_or_id)
    if not path.suffix:
        path = (specs_dir or SPECS_DIR) / f"{path_or_id}.yaml"
    try:
        stat = path.stat()
    except OSError:
        raise EngineError("spec_invalid", f"spec file not found: {display_path(path)}") from None
    cached = _cache.get(path)
    if cached and cached[0] == stat.st_mtime:
        return cached[1]
    text = path.read_text(encoding="utf-8")
    data = parse_yaml(text, path)
    if not isinstance(data, dict):
        raise EngineError("spec_invalid", "a spec must be a YAML mapping", location=f"{display_path(path)}:1:1")
    spec = Spec(id=str(data.get("id", path.stem)), data=data, path=path, text=text)
    _cache[path] = (stat.st_mtime, spec)
    return spec


def spec_paths(specs_dir: Path | None = None) -> list[Path]:
    return sorted((specs_dir or SPECS_DIR).glob("*.yaml"))


def all_specs(specs_dir: Path | None = None) -> list[Spec]:
    """Every spec, in CodexBar's registry order (unknown ids last, by name)."""
    from .registry import PROVIDER_IDS

    order = {pid: i for i, pid in enumerate(PROVIDER_IDS)}
    specs = [load_spec(p) for p in spec_paths(specs_dir)]
    return sorted(specs, key=lambda s: (order.get(s.id, len(order)), s.id))


def iter_names(spec: Spec) -> Iterator[str]:
    yield spec.id
    yield spec.cli_name
    yield from spec.aliases


def find_spec(name: str, specs_dir: Path | None = None, load: Callable[[Path], Spec] | None = None) -> Spec:
    """Resolve a provider by id, CLI name or alias (case-insensitive); unknown -> error with close matches.

    `load` reads a spec file (default `load_spec`; the CLI passes its cached, validated loader).
    """
    load = load or load_spec
    wanted = name.strip().lower()
    direct = (specs_dir or SPECS_DIR) / f"{wanted}.yaml"
    if direct.exists():
        return load(direct)
    names: dict[str, Spec] = {}
    for path in spec_paths(specs_dir):
        spec = load(path)
        for n in iter_names(spec):
            names[n.lower()] = spec
    if wanted in names:
        return names[wanted]
    import difflib

    close = difflib.get_close_matches(wanted, list(names), n=3, cutoff=0.6)
    hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
    known = ", ".join(sorted({s.id for s in names.values()}))
    raise EngineError("usage_error", f"unknown provider {name!r}{hint}; known providers: {known}")
