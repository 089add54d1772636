"""Error types: one root (`EngineError`) whose `kind` comes from a closed set."""
from __future__ import annotations

from typing import Any

from ._generated.enums import ERROR_KINDS

#: Fetch error kinds, exactly the closed set of CASSETTE.md (`expect.error.kind`), from the schema.
FETCH_KINDS: tuple[str, ...] = ERROR_KINDS
#: Kinds that never reach fetch output: problems with a spec, a cassette or the command line.
SPEC_KINDS: tuple[str, ...] = ("spec_invalid", "cassette_invalid", "usage_error", "config_invalid")


class EngineError(Exception):
    """Root of every error the engine raises on purpose.

    Carries where it happened (provider, strategy, step) and, for spec problems,
    the spec location (`specs/x.yaml:line:col`) and JSON path.
    """

    def __init__(
        self,
        kind: str,
        message: str,
        *,
        provider: str | None = None,
        strategy: str | None = None,
        step: str | None = None,
        location: str | None = None,
        json_path: str | None = None,
    ) -> None:
        if kind not in FETCH_KINDS and kind not in SPEC_KINDS:
            raise ValueError(f"unknown error kind {kind!r}")
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.provider = provider
        self.strategy = strategy
        self.step = step
        self.location = location
        self.json_path = json_path

    def where(self) -> str:
        """`provider/strategy/step` (only the parts that are known)."""
        return "/".join(p for p in (self.provider, self.strategy, self.step) if p)

    def __str__(self) -> str:
        prefix = self.kind
        if self.location:
            prefix += f" at {self.location}"
        if self.json_path:
            prefix += f" {self.json_path}"
        where = self.where()
        if where and not self.location:
            prefix += f" [{where}]"
        return f"{prefix}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "message": self.message}
        for key in ("provider", "strategy", "step", "location", "json_path"):
            value = getattr(self, key)
            if value:
                out[key] = value
        return out


class SpecError(EngineError):
    """A spec (or several problems in one) failed validation; `problems` lists them all, sorted."""

    def __init__(self, problems: list[str], *, provider: str | None = None) -> None:
        self.problems = problems
        super().__init__("spec_invalid", "\n".join(problems), provider=provider)

    def __str__(self) -> str:
        return "\n".join(self.problems)
