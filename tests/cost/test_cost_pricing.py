"""Model normalisation and price formulas (tiers, 1h cache writes, historical rates)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from engine.cost import pricing


@pytest.mark.parametrize("raw, norm", [
    ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
    ("claude-sonnet-4-20250514", "claude-sonnet-4-20250514"),      # base not priced: keep the dated id
    ("anthropic.claude-opus-4-1-20250805-v1:0", "claude-opus-4-1"),
    ("us.anthropic.claude-haiku-4-5-20251001-v1:0", "claude-haiku-4-5"),
    ("claude-opus-4-5@20251101", "claude-opus-4-5"),
    ("claude-unknown-20250101", "claude-unknown-20250101"),
])
def test_normalize_claude(raw: str, norm: str) -> None:
    assert pricing.normalize_claude_model(raw) == norm


@pytest.mark.parametrize("raw, norm", [
    ("openai/gpt-5", "gpt-5"), ("gpt-5-2025-08-07", "gpt-5"), ("gpt-5-codex", "gpt-5-codex"),
    ("gpt-9-2025-01-01", "gpt-9-2025-01-01"),
])
def test_normalize_codex(raw: str, norm: str) -> None:
    assert pricing.normalize_codex_model(raw) == norm


def test_codex_cached_tokens_billed_once_and_long_context_tier() -> None:
    # gpt-5.4: 2.5 / 15 / 0.25 per 1M; above 272k input: 5 / 22.5 / 0.5
    assert pricing.codex_cost("gpt-5.4", 200_000, 100_000, 1000) == pytest.approx(
        (100_000 * 2.5 + 100_000 * 0.25 + 1000 * 15) / 1e6)
    assert pricing.codex_cost("gpt-5.4", 300_000, 100_000, 1000) == pytest.approx(
        (200_000 * 5 + 100_000 * 0.5 + 1000 * 22.5) / 1e6)
    # no cache price: cached tokens at the input price
    assert pricing.codex_cost("gpt-5-pro", 1000, 400, 10) == pytest.approx((1000 * 15 + 10 * 120) / 1e6)
    assert pricing.codex_cost("gpt-9", 1, 0, 1) is None


def test_claude_tier_and_one_hour_cache_writes() -> None:
    # sonnet-4-5 above 200k prompt tokens: 6 / 22.5 / 7.5 / 0.6
    assert pricing.claude_cost("claude-sonnet-4-5", 10, 150_000, 60_000, 0, 100) == pytest.approx(
        (10 * 6 + 150_000 * 0.6 + 60_000 * 7.5 + 100 * 22.5) / 1e6)
    assert pricing.claude_cost("claude-haiku-4-5", 0, 0, 1000, 400, 0) == pytest.approx(
        (600 * 1.25 + 400 * 2 * 1) / 1e6)
    assert pricing.claude_cost("claude-nope", 1, 1, 1, 0, 1) is None


def test_claude_historical_long_context_rates() -> None:
    before = datetime(2026, 3, 12, 23, 0, tzinfo=timezone.utc).timestamp()
    after = datetime(2026, 3, 13, 0, 0, tzinfo=timezone.utc).timestamp()
    args = ("claude-opus-4-6", 0, 250_000, 0, 0, 1000)
    assert pricing.claude_cost(*args, before) == pytest.approx((250_000 * 1 + 1000 * 37.5) / 1e6)
    assert pricing.claude_cost(*args, after) == pytest.approx((250_000 * 0.5 + 1000 * 25) / 1e6)


def test_pricing_file_documents_source_and_date() -> None:
    table = pricing.pricing_table()
    assert table["source"] and table["as_of"] == "2026-07-01"
    assert "gpt-5-codex" in table["codex"] and "claude-sonnet-4-5" in table["claude"]
