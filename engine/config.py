"""Config stage: the CodexBar config file (CONTRACT §6) -> provider entries, enablement and order."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .errors import EngineError


def config_path(env: Mapping[str, str], home: Path) -> Path:
    """CodexBar's resolution order: CODEXBAR_CONFIG, absolute XDG_CONFIG_HOME, ~/.config, legacy ~/.codexbar."""
    explicit = (env.get("CODEXBAR_CONFIG") or "").strip()
    if explicit:
        return Path(explicit.replace("~", str(home), 1) if explicit.startswith("~") else explicit)
    xdg = (env.get("XDG_CONFIG_HOME") or "").strip()
    if xdg.startswith("~"):
        xdg = str(home) + xdg[1:]
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "codexbar" / "config.json"
    modern = home / ".config" / "codexbar" / "config.json"
    legacy = home / ".codexbar" / "config.json"
    if modern.exists():
        return modern
    if legacy.exists():
        return legacy
    return modern


@dataclass
class Config:
    """Normalized config: provider entries in display order (file order, then the rest in registry order)."""

    path: Path
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    exists: bool = False

    def enabled(self, defaults: Mapping[str, bool]) -> list[str]:
        return [pid for pid, entry in self.entries.items() if entry.get("enabled", defaults.get(pid, False))]


def load_config(env: Mapping[str, str], home: Path, registry: list[str]) -> Config:
    """Read and normalize the config; a decode problem is a `config_invalid` error naming the file."""
    path = config_path(env, home)
    config = Config(path=path)
    if path.exists():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise EngineError("config_invalid", f"Failed to decode CodexBar config: {path}: {exc}") from None
        if not isinstance(data, dict) or "version" not in data or not isinstance(data.get("providers"), list):
            raise EngineError("config_invalid",
                              f"Failed to decode CodexBar config: {path}: needs `version` and a `providers` array")
        config.exists = True
        for i, entry in enumerate(data["providers"]):
            if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
                raise EngineError("config_invalid", f"Failed to decode CodexBar config: providers[{i}] needs an `id`")
            if entry["id"] not in registry:
                raise EngineError("config_invalid",
                                  f"Failed to decode CodexBar config: providers[{i}]: unknown provider id "
                                  f"{entry['id']!r}")
            config.entries.setdefault(entry["id"], entry)  # duplicate ids keep the first
    for pid in registry:
        config.entries.setdefault(pid, {"id": pid})
    return config


def select_account(entry: Mapping[str, Any], *, label: str | None = None, index: int | None = None,
                   provider: str) -> Mapping[str, Any] | None:
    """The token account to use: by label, by 1-based index, else the active one (clamped); None if none."""
    accounts_obj = entry.get("tokenAccounts") or {}
    accounts: list[Mapping[str, Any]] = list(accounts_obj.get("accounts") or [])
    if label is None and index is None:
        if not accounts:
            return None
        active = int(accounts_obj.get("activeIndex", 0) or 0)
        return accounts[min(max(active, 0), len(accounts) - 1)]
    if not accounts:
        raise EngineError("missing_credential", f"No token accounts configured for {provider}.")
    if label is not None:
        for account in accounts:
            if str(account.get("label", "")).lower() == label.lower():
                return account
        raise EngineError("missing_credential", f"No token account labeled '{label}' for {provider}.")
    assert index is not None
    if not 1 <= index <= len(accounts):
        raise EngineError("missing_credential",
                          f"Token account index {index} out of range for {provider} (1-{len(accounts)}).")
    return accounts[index - 1]


def all_accounts(entry: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list((entry.get("tokenAccounts") or {}).get("accounts") or [])
