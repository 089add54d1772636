"""Provider registry facts shared by the CLI: the 54 ids in CodexBar's registry order (from schemas/config.schema.json)."""
from __future__ import annotations

from ._generated.registry import PROVIDER_IDS

#: CodexBar's default enablement: only codex is on without a config file.
DEFAULT_ENABLED: dict[str, bool] = {"codex": True}
#: `--provider both`.
PRIMARY: tuple[str, ...] = ("codex", "claude")

__all__ = ["PROVIDER_IDS", "DEFAULT_ENABLED", "PRIMARY"]
