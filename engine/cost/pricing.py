"""Model-name normalisation and API-rate pricing for the local cost scan.

Prices live in ``pricing.json`` next to this module (USD per 1M tokens, with the
``source`` and ``as_of`` date inside the file).  A model missing from the table is
*unpriced*: ``*_cost`` returns ``None`` and the report omits its cost and lists it under
``diagnostics.unpricedModels`` -- it is never counted as $0.
"""
from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from ._hash import blake2b

if TYPE_CHECKING:
    #: Codex prices per 1M tokens: (input, cache_read, output)
    CodexPrices = tuple[float, float, float]
    #: :func:`codex_rates`: (base prices, [(above_input_tokens, prices), ...])
    CodexRates = tuple[CodexPrices, list[tuple[int, CodexPrices]]]
    #: Claude prices per 1M tokens: (input, cache_read, cache_write, cache_write_1h, output)
    ClaudePrices = tuple[float, float, float, float, float]
    #: one Claude price entry: (base prices, [(above_prompt_tokens, prices), ...])
    ClaudeEntryRates = tuple[ClaudePrices, list[tuple[int, ClaudePrices]]]
    #: :func:`claude_rates`: (current entry, [(before_epoch, historical entry), ...])
    ClaudeRates = tuple[ClaudeEntryRates, list[tuple[float, ClaudeEntryRates]]]

PRICING_PATH = Path(__file__).with_name("pricing.json")

_CODEX_DATED = re.compile(r"-\d{4}-\d{2}-\d{2}$")
_CLAUDE_DATED = re.compile(r"[-@]\d{8}$")
_CLAUDE_BEDROCK_VERSION = re.compile(r"-v\d+:\d+$")


@lru_cache(maxsize=1)
def _raw() -> tuple[dict[str, Any], str]:
    data = PRICING_PATH.read_bytes()
    return msgspec.json.decode(data), blake2b(data, digest_size=8).hexdigest()


def pricing_table() -> dict[str, Any]:
    """The parsed pricing.json (do not mutate)."""
    return _raw()[0]


def pricing_fingerprint() -> str:
    """Short hash of pricing.json; cached costs are only valid for the same table."""
    return _raw()[1]


def _parse_utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@lru_cache(maxsize=1)
def _claude_historical() -> dict[str, list[tuple[float, dict[str, Any]]]]:
    out: dict[str, list[tuple[float, dict[str, Any]]]] = {}
    for model, entry in pricing_table()["claude"].items():
        for hist in entry.get("historical", ()):
            out.setdefault(model, []).append((_parse_utc(hist["before"]).timestamp(), hist))
    return out


# --------------------------------------------------------------------------- names

@lru_cache(maxsize=4096)
def normalize_codex_model(raw: str) -> str:
    """Strip ``openai/`` and a trailing ``-YYYY-MM-DD`` when the base name is priced."""
    name = raw.strip()
    if name.startswith("openai/"):
        name = name[len("openai/"):]
    table = pricing_table()["codex"]
    if name in table:
        return name
    m = _CODEX_DATED.search(name)
    if m and name[: m.start()] in table:
        return name[: m.start()]
    return name


@lru_cache(maxsize=4096)
def normalize_claude_model(raw: str) -> str:
    """Drop ``anthropic.``, keep the ``claude-…`` tail after the last ``.``, drop ``-vN:M``,
    and drop a ``-YYYYMMDD`` (or Vertex ``@YYYYMMDD``) suffix when the base name is priced."""
    name = raw.strip()
    if name.startswith("anthropic."):
        name = name[len("anthropic."):]
    if "claude-" in name and "." in name:
        tail = name[name.rfind(".") + 1:]
        if tail.startswith("claude-"):
            name = tail
    m = _CLAUDE_BEDROCK_VERSION.search(name)
    if m:
        name = name[: m.start()]
    m = _CLAUDE_DATED.search(name)
    if m and name[: m.start()] in pricing_table()["claude"]:
        return name[: m.start()]
    return name


# --------------------------------------------------------------------------- costs

@lru_cache(maxsize=None)
def _codex_rates(model: str) -> CodexRates | None:
    """``((p_in, p_cr, p_out), [(above_input_tokens, (p_in, p_cr, p_out)), ...])`` or ``None``."""
    entry = pricing_table()["codex"].get(model)
    if entry is None:
        return None

    def rates(prices: dict[str, Any]) -> CodexPrices:
        p_in = prices.get("input", entry["input"])
        p_cr = prices.get("cache_read", entry.get("cache_read"))
        if p_cr is None:
            p_cr = p_in
        return (p_in, p_cr, prices.get("output", entry["output"]))

    return rates(entry), [(t["above_input_tokens"], rates(t)) for t in entry.get("tiers", ())]


def codex_cost(model: str, input_tokens: int, cached_tokens: int, output_tokens: int) -> float | None:
    """USD for one Codex usage delta; ``model`` is already normalised. ``None`` = unpriced.

    ``input_tokens`` includes ``cached_tokens`` (OpenAI semantics); cached tokens are billed
    once, at the cache-read price (or the input price when the model has none).
    """
    r = _codex_rates(model)
    if r is None:
        return None
    return codex_cost_with(r, input_tokens, cached_tokens, output_tokens)


def codex_rates(model: str) -> CodexRates | None:
    """The rates :func:`codex_cost_with` takes for a normalised model (``None`` = unpriced)."""
    return _codex_rates(model)


def codex_cost_with(r: CodexRates, input_tokens: int, cached_tokens: int, output_tokens: int) -> float:
    """:func:`codex_cost` with ``r = codex_rates(model)`` (not ``None``)."""
    inp = input_tokens if input_tokens > 0 else 0
    cached = cached_tokens if cached_tokens > 0 else 0
    if cached > inp:
        cached = inp
    rates, tiers = r
    for above, tier_rates in tiers:
        if inp > above:
            rates = tier_rates
            break
    p_in, p_cr, p_out = rates
    return ((inp - cached) * p_in + cached * p_cr + (output_tokens if output_tokens > 0 else 0) * p_out) / 1e6


def _claude_entry_rates(entry: dict[str, Any]) -> ClaudeEntryRates:
    def rates(prices: dict[str, Any]) -> ClaudePrices:
        p_in = prices.get("input", entry["input"])
        p_cr = prices.get("cache_read", entry.get("cache_read"))
        p_cw = prices.get("cache_write", entry.get("cache_write"))
        if p_cr is None:
            p_cr = p_in
        if p_cw is None:
            p_cw = p_in
        p_cw1h = prices.get("cache_write_1h", entry.get("cache_write_1h", 2 * p_in))
        return (p_in, p_cr, p_cw, p_cw1h, prices.get("output", entry["output"]))

    return rates(entry), [(t["above_input_tokens"], rates(t)) for t in entry.get("tiers", ())]


@lru_cache(maxsize=None)
def claude_rates(model: str) -> ClaudeRates | None:
    """Precomputed rates of a normalised Claude model for :func:`claude_cost_with`: ``(current,
    [(before_epoch, historical), ...])``, each ``(base_rates, [(above_prompt_tokens, rates)])``;
    ``None`` = unpriced."""
    entry = pricing_table()["claude"].get(model)
    if entry is None:
        return None
    return (_claude_entry_rates(entry),
            [(before, _claude_entry_rates(hist)) for before, hist in _claude_historical().get(model, ())])


def claude_cost_with(r: ClaudeRates, inp: int, cr: int, cc: int, cc1h: int, out: int, ts_epoch: float | None) -> float:
    """:func:`claude_cost` with ``r = claude_rates(model)`` (not ``None``) and token counts
    already clamped (all >= 0, ``cc1h <= cc``)."""
    cur, hist = r
    if ts_epoch is not None:
        for before, h in hist:
            if ts_epoch < before:
                cur = h
                break
    rates, tiers = cur
    if tiers:
        prompt = inp + cr + cc
        for above, tier_rates in tiers:
            if prompt > above:
                rates = tier_rates
                break
    p_in, p_cr, p_cw, p_cw1h, p_out = rates
    return (inp * p_in + cr * p_cr + (cc - cc1h) * p_cw + cc1h * p_cw1h + out * p_out) / 1e6


def claude_cost(model: str, input_tokens: int, cache_read: int, cache_create: int, cache_create_1h: int,
                output_tokens: int, ts_epoch: float | None = None) -> float | None:
    """USD for one Claude message; ``model`` is already normalised. ``None`` = unpriced."""
    r = claude_rates(model)
    if r is None:
        return None
    inp = max(0, input_tokens)
    cr = max(0, cache_read)
    cc = max(0, cache_create)
    cc1h = min(max(0, cache_create_1h), cc)
    return claude_cost_with(r, inp, cr, cc, cc1h, max(0, output_tokens), ts_epoch)


def claude_needs_timestamp(model: str) -> bool:
    """True when the price of ``model`` depends on the row's date (historical entries)."""
    return model in _claude_historical()
