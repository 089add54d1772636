"""cli.py: commands, CodexBar-compatible errors and exit codes."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from engine.cli import main

from ..conftest import ROOT

OPENROUTER = ROOT / "fixtures" / "openrouter"


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_run_text_output() -> None:
    code, out, err = cli("run", "or", "--cassette", str(OPENROUTER / "normal.yaml"))
    assert code == 0 and err == ""
    assert out.splitlines() == ["== OpenRouter (api) ==", "Credits: 75% left [=========---]", "Plan: Balance: $74.50"]


def test_run_pretty_json_sorts_keys_swift_style() -> None:
    code, out, _ = cli("run", "openrouter", "--cassette", str(OPENROUTER / "normal.yaml"), "--format", "json",
                       "--pretty")
    assert code == 0 and out.startswith('{\n  "provider" : "openrouter",\n  "source" : "api",')
    assert '"usedPercent" : 25\n' in out  # integral doubles without a fraction


def test_run_trace_shows_masked_requests_and_field_sources() -> None:
    code, _, err = cli("run", "openrouter", "--cassette", str(OPENROUTER / "normal.yaml"), "--trace")
    assert code == 0
    assert "step credits: GET https://openrouter.ai/api/v1/credits -> 200" in err
    assert "authorization: Bearer ****" in err and "sk-or-v1-test-normal" not in err
    assert "usage.primary.usedPercent <- clamp(percent(key_usage, key_limit), 0, 100) = 25.0" in err


def test_run_error_exit_codes() -> None:
    code, out, err = cli("run", "openrouter", "--cassette", str(OPENROUTER / "html_body.yaml"), "--format", "json")
    assert code == 3 and json.loads(out)["error"]["kind"] == "parse_failure"
    code, out, err = cli("run", "openrouter", "--cassette", str(OPENROUTER / "unauthorized.yaml"))
    assert code == 1 and out == "" and err.startswith("Error (openrouter): OpenRouter rejected the API key")


def test_unknown_provider_lists_close_matches() -> None:
    code, _, err = cli("run", "openroutr", "--cassette", str(OPENROUTER / "normal.yaml"))
    assert code == 1 and "unknown provider 'openroutr' (did you mean 'openrouter'?)" in err
    code, out, _ = cli("usage", "--provider", "openroutr", "--format", "json")
    payload = json.loads(out)
    assert code == 1 and payload[0]["provider"] == "cli" and payload[0]["error"]["kind"] == "args"


def test_cassette_for_another_provider_is_refused() -> None:
    code, _, err = cli("run", "zai", "--cassette", str(OPENROUTER / "normal.yaml"))
    assert code == 1 and "is for 'openrouter'" in err


def test_bad_arguments_in_json_mode_print_a_command_error_array() -> None:
    code, out, _ = cli("usage", "--format", "json", "--bogus")
    assert code == 1
    assert json.loads(out) == [{"provider": "cli", "source": "cli",
                                "error": {"code": 1, "message": "unrecognized arguments: --bogus", "kind": "args"}}]


def _config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, providers: list[dict]) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    path = tmp_path / ".config" / "codexbar" / "config.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"version": 1, "providers": providers}))


def test_usage_without_config_selects_only_codex(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    code, out, err = cli("usage", "--format", "json")
    assert code == 0 and json.loads(out) == []


def test_usage_rows_follow_config_order_and_exit_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _config(tmp_path, monkeypatch, [{"id": "openrouter", "enabled": True}, {"id": "codex", "enabled": False}])
    code, out, err = cli("usage", "--format", "json")
    rows = json.loads(out)
    assert code == 1 and [r["provider"] for r in rows] == ["openrouter"]
    assert rows[0]["error"]["kind"] == "missing_credential" and rows[0]["source"] == "auto"


def test_usage_rejects_bad_source_and_account_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    code, out, _ = cli("usage", "--source", "bogus", "--format", "json")
    assert json.loads(out)[0]["error"]["message"] == "Error: --source must be auto|web|cli|oauth|api."
    code, out, _ = cli("usage", "--provider", "openrouter", "--account", "work", "--format", "json")
    assert json.loads(out)[0]["error"]["message"] == "Error: openrouter does not support token accounts."


def test_config_with_unknown_provider_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _config(tmp_path, monkeypatch, [{"id": "nosuch", "enabled": True}])
    code, out, _ = cli("usage", "--format", "json")
    err = json.loads(out)[0]["error"]
    assert code == 1 and err["kind"] == "config" and "Failed to decode CodexBar config" in err["message"]


def test_list_never_prints_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or-v1-very-secret")
    code, out, _ = cli("list", "--format", "json")
    rows = {r["id"]: r for r in json.loads(out)}
    assert code == 0 and rows["openrouter"]["inputs"]["token"]["present"] == "env OPENROUTER_API_KEY"
    assert rows["openrouter"]["inputs"]["base_url"]["present"] == "default"
    assert rows["openrouter"]["inputs"]["referer"]["present"] == "missing"
    assert "sk-or-v1-very-secret" not in out
    code, text, _ = cli("list")
    assert "[env OPENROUTER_API_KEY]" in text and "sk-or-v1-very-secret" not in text
    assert rows["openrouter"]["strategies"] == [{"id": "api", "kind": "api", "source": "api",
                                                 "implementation": "declarative"}]


def test_validate_command(tmp_path: Path) -> None:
    code, out, _ = cli("validate", str(ROOT / "fixtures" / "invalid-specs" / "misspelled_key.yaml"))
    assert code == 1 and "did you mean 'steps'" in out
    code, out, _ = cli("validate", str(ROOT / "specs" / "openrouter.yaml"))
    assert code == 0 and "1 spec(s) OK" in out


def test_demo_json_renders_every_spec_with_fixtures() -> None:
    code, out, _ = cli("demo", "--format", "json")
    rows = json.loads(out)
    assert code == 0 and any(r["provider"] == "openrouter" and r["source"] == "api" for r in rows)


def _accounts_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, accounts: list[dict]) -> None:
    _config(tmp_path, monkeypatch, [{"id": "deepseek", "enabled": True, "tokenAccounts": {
        "version": 1, "activeIndex": 0, "accounts": accounts}}])


def test_token_account_selection_errors_are_provider_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _accounts_config(tmp_path, monkeypatch, [{"id": "A-1", "label": "work", "token": "sk-test-a", "addedAt": 0}])
    code, out, _ = cli("usage", "--provider", "deepseek", "--account", "home", "--format", "json")
    assert code == 1 and json.loads(out) == [{"provider": "deepseek", "source": "auto", "error": {
        "code": 1, "message": "No token account labeled 'home' for deepseek.", "kind": "missing_credential"}}]
    code, out, _ = cli("usage", "--provider", "deepseek", "--account-index", "2", "--format", "json")
    assert json.loads(out)[0]["error"]["message"] == "Token account index 2 out of range for deepseek (1-1)."
    code, out, _ = cli("usage", "--provider", "deepseek", "--all-accounts", "--account", "work", "--format", "json")
    assert json.loads(out)[0]["error"]["message"] == (
        "Error: --all-accounts cannot be combined with --account or --account-index.")
    code, out, _ = cli("usage", "--provider", "all", "--account", "work", "--format", "json")
    assert json.loads(out)[0]["error"]["message"] == "Error: account selection requires a single provider."


def test_all_accounts_fans_out_one_row_per_account() -> None:
    import asyncio

    import httpx

    from engine.load import find_spec
    from engine.runner import fetch_many

    from ..helpers import context

    def answer(request: httpx.Request) -> httpx.Response:
        total = {"Bearer sk-test-a": "5.00", "Bearer sk-test-b": "0.00"}[request.headers["Authorization"]]
        return httpx.Response(200, json={"is_available": True, "balance_infos": [
            {"currency": "USD", "total_balance": total, "granted_balance": "0.00", "topped_up_balance": total}]})

    accounts = [{"label": "work", "token": "sk-test-a"}, {"label": "home", "token": "sk-test-b"}]
    outcomes = asyncio.run(fetch_many([find_spec("deepseek")], context(answer, env={}),
                                      accounts={"deepseek": accounts}))
    assert [(o.account, o.usage["primary"]["usedPercent"]) for o in outcomes] == [("work", 0), ("home", 100)]


def test_text_output_of_detail_descriptions_and_resets() -> None:
    code, out, _ = cli("run", "crof", "--cassette", str(ROOT / "fixtures" / "crof" / "normal.yaml"))
    assert code == 0 and out.splitlines() == [
        "== Crof (api) ==", "Requests: 99% left [===========-]", "Resets in 17h", "998 requests left",
        "Credits: 100% left [============]", "$12.34", "Plan: API key"]
    code, out, _ = cli("run", "venice", "--cassette", str(ROOT / "fixtures" / "venice" / "normal.yaml"))
    assert "Resets DIEM 62.50 / 100.00 epoch allocation" in out.splitlines()


def test_list_marks_auth_hooks_and_counts_declarative_providers() -> None:
    code, out, _ = cli("list", "--format", "json")
    rows = {r["id"]: r for r in json.loads(out)}
    assert rows["bedrock"]["strategies"][0]["implementation"] == "declarative+auth:aws_sigv4"
    assert all(s["implementation"].startswith("declarative") for r in rows.values() for s in r["strategies"])
    code, text, _ = cli("list")
    assert text.rstrip().endswith(f"{len(rows)} providers; {len(rows)} with no provider-specific Python "
                                  "(1 signing requests with a generic auth hook)")


def test_help_lists_every_command_and_each_command_keeps_its_options(capsys) -> None:
    """A known command builds only its own subparser (start-up time): the top-level help still
    lists them all, and each command's help and errors are its own."""
    from engine.cli import COMMAND_NAMES, build_parser

    top = build_parser(None).format_help()
    assert all(f"    {name}" in top for name in COMMAND_NAMES)
    for name in COMMAND_NAMES:
        sub = build_parser(name)
        with pytest.raises(SystemExit):
            sub.parse_args([name, "--help"])
        assert f"usage: engine {name}" in capsys.readouterr().out
    assert "--days" in build_parser("cost")._subparsers._group_actions[0].choices["cost"].format_help()
    code, out, err = cli("cost", "--no-such-option")
    assert code == 1 and "--no-such-option" in (out + err)
