"""CLI: `engine run|usage|list|validate|demo|cost` (CodexBar-compatible JSON, exit codes as CONTRACT §1.7)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence, TextIO

from .errors import EngineError, SpecError

EPILOG_RUN = """examples:
  engine run openrouter --cassette fixtures/openrouter/normal.yaml --format json --pretty
  engine run openrouter --trace                 # live: each request (masked), status, timing, field sources
  OPENROUTER_API_KEY=sk-or-... engine run or    # by CLI name or alias
"""
EPILOG_USAGE = """Providers come from the CodexBar config file (CODEXBAR_CONFIG, $XDG_CONFIG_HOME/codexbar/config.json,
~/.config/codexbar/config.json, ~/.codexbar/config.json), enabled ones in file order.
examples:
  engine usage --provider all --format json --pretty
  engine usage --provider deepseek --account work
"""


COMMAND_NAMES = ("run", "usage", "list", "validate", "login", "demo", "cost")


class UsageError(Exception):
    pass


def _columns() -> int:
    """The terminal's width as `shutil.get_terminal_size` tells it, without importing shutil
    (argparse would, for every parser it builds: ~5 ms of each command's start-up)."""
    import os

    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class _Width:
    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position,  # type: ignore[call-arg]
                         _columns() - 2 if width is None else width)


class _HelpFormatter(_Width, argparse.HelpFormatter):
    pass


class _RawFormatter(_Width, argparse.RawDescriptionHelpFormatter):
    pass


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> Any:
        raise UsageError(message)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The CLI parser. For a known `command` only that command's subparser is built, and `cost`'s
    own options are only loaded when that command runs (both keep start-up short)."""
    parser = _Parser(prog="engine", description="Declarative-spec provider engine for AI usage quotas: one YAML "
                     "spec per provider, run by one engine, JSON compatible with `codexbar usage --format json`.",
                     formatter_class=_RawFormatter,
                     epilog="start here:\n"
                            "  engine demo                      every provider, replayed from bundled cassettes\n"
                            "  engine list                      what is configured on this machine\n"
                            "  engine usage --format json       the providers enabled in your CodexBar config\n"
                            "  engine run zai --trace           one provider, showing each request and field\n"
                            "  engine <command> --help          options and examples of a command")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def want(name: str) -> bool:  # a known command needs only its own subparser (start-up time)
        return command not in COMMAND_NAMES or command == name

    def fmt(p: argparse.ArgumentParser) -> None:
        p.add_argument("--format", choices=["text", "json"], default=None, help="output format (default text)")
        p.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
        p.add_argument("--pretty", action="store_true", help="pretty JSON: indented, keys sorted")

    if want("run"):
        run = sub.add_parser("run", help="run one provider spec (the spec author's tool)", epilog=EPILOG_RUN,
                             formatter_class=_RawFormatter,
                             description="Run one provider's spec, live or against a cassette, and show what it "
                             "produced.")
        run.add_argument("provider", help="provider id, CLI name or alias (e.g. openrouter, or)")
        run.add_argument("--source", help="source mode: auto|web|cli|oauth|api (default: config, else auto)")
        run.add_argument("--cassette", type=Path, help="replay this cassette (fixtures/<id>/<case>.yaml): no network")
        run.add_argument("--trace", action="store_true", help="print each step (masked request, status, timing) and "
                         "which expression produced each output field, to stderr")
        run.add_argument("--account", help="token account label")
        run.add_argument("--account-index", type=int, help="token account index (1-based)")
        fmt(run)

    if want("usage"):
        usage = sub.add_parser("usage", help="CodexBar-compatible usage for the enabled providers", epilog=EPILOG_USAGE,
                               formatter_class=_RawFormatter)
        usage.add_argument("--provider", help="id, CLI name or alias, or both|all (default: enabled in config)")
        usage.add_argument("--source", help="source mode: auto|web|cli|oauth|api")
        usage.add_argument("--json-only", action="store_true", help="JSON on stdout, nothing on stderr")
        usage.add_argument("--account", help="token account label (single provider)")
        usage.add_argument("--account-index", type=int, help="token account index, 1-based (single provider)")
        usage.add_argument("--all-accounts", action="store_true", help="one row per token account (single provider)")
        usage.add_argument("-v", "--verbose", action="store_true", help="print the fetch-strategy trace to stderr")
        fmt(usage)

    if want("list"):
        lst = sub.add_parser("list", help="providers, strategies, and which inputs are present here (never values)")
        fmt(lst)

    if want("validate"):
        val = sub.add_parser("validate", help="validate specs: every problem at once, as file:line:col $.path: message")
        val.add_argument("paths", nargs="*", type=Path, help="spec files (default: every spec in specs/)")

    if want("login"):
        login = sub.add_parser("login",
                               help="sign in to a provider (device flow) and store the token in the OS keyring",
                               description="Run a provider's sign-in flow (e.g. GitHub's device flow for copilot): "
                               "print a code and a URL, wait for approval, and store the token in the OS keyring, "
                               "where the provider's spec reads it.")
        login.add_argument("provider", help="provider id, CLI name or alias (e.g. copilot)")

    if want("demo"):
        demo = sub.add_parser("demo", help="render every provider from its bundled cassettes (no network)")
        fmt(demo)

    if want("cost"):
        cost = sub.add_parser("cost", help="local token cost from Codex/Claude session logs (Codex, Claude, Vertex AI)",
                              description="Scan Codex and Claude session logs for tokens and estimated cost per day "
                              "and model (CodexBar `cost` JSON).")
        if command == "cost":  # (its options import the scanner: only when that command runs)
            from .cost import cli as cost_cli

            cost_cli.add_arguments(cost)

    return parser


def _is_json(argv: Sequence[str]) -> bool:
    if "--format" in argv:
        i = list(argv).index("--format")
        if i + 1 < len(argv) and argv[i + 1] in ("json", "text"):
            return argv[i + 1] == "json"
    return "--json" in argv or "--json-only" in argv or "--format=json" in argv


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    out, err = stdout or sys.stdout, stderr or sys.stderr
    try:
        args = build_parser(argv[0] if argv else None).parse_args(argv)
    except UsageError as exc:
        return _command_error(str(exc), "args", argv, out, err)
    if args.command is None:
        build_parser().print_help(out)
        return 0
    try:
        handler = COMMANDS[args.command]
        return int(handler(args, out, err))
    except SpecError as exc:
        print(str(exc), file=err)
        return 1
    except EngineError as exc:
        kind = {"usage_error": "args", "config_invalid": "config"}.get(exc.kind, "runtime")
        return _command_error(exc.message if kind != "runtime" else str(exc), kind, argv, out, err)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `engine list | head`: the reader left; not an error worth a traceback
        import os

        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 141


def _command_error(message: str, kind: str, argv: Sequence[str], out: TextIO, err: TextIO) -> int:
    from .output import command_error, dumps

    if _is_json(argv):
        print(dumps(command_error(message, kind), pretty="--pretty" in argv), file=out)
    else:
        print(f"Error: {message}", file=err)
    return 1


def _want_json(args: argparse.Namespace) -> bool:
    if args.format:
        return bool(args.format == "json")
    return bool(getattr(args, "json", False) or getattr(args, "json_only", False))


# --------------------------------------------------------------------------------------------- run

def cmd_run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    import asyncio

    from .cassette import load_cassette, replay_context
    from .load import find_spec
    from .output import dumps, exit_code, payload, text_block
    from .runner import fetch
    from .validate import load_valid

    cache_dir = _engine_cache_dir()
    spec = find_spec(args.provider, load=lambda path: load_valid(path, cache_dir))
    if args.cassette:
        cassette = load_cassette(args.cassette, cache_dir)
        if cassette["provider"] != spec.id:
            raise EngineError("usage_error", f"cassette {args.cassette} is for {cassette['provider']!r}, not {spec.id!r}")
        with replay_context(cassette) as (ctx, _replay):
            source = args.source or cassette.get("source")
            account = _account(spec, ctx, args)
            outcome = asyncio.run(fetch(spec, ctx, source=source, account=account, want_trace=args.trace))
            now = ctx.now()
    else:
        ctx = _live_context()
        account = _account(spec, ctx, args)
        outcome = asyncio.run(fetch(spec, ctx, source=args.source, account=account, want_trace=args.trace))
        now = ctx.now()
    if args.trace:
        _print_trace(outcome, err)
    if _want_json(args):
        print(dumps(payload(outcome), pretty=args.pretty), file=out)
    else:
        block, error_line = text_block(outcome, spec, now)
        if block:
            print(block, file=out)
        if error_line:
            print(error_line, file=err)
    return exit_code(outcome.error)


def _account(spec: Any, ctx: Any, args: argparse.Namespace) -> Any:
    from .config import select_account

    if not spec.data.get("token_accounts"):
        if getattr(args, "account", None) or getattr(args, "account_index", None):
            raise EngineError("usage_error", f"Error: {spec.id} does not support token accounts.")
        return None
    return select_account(ctx.config_entry(spec.id), label=args.account, index=args.account_index, provider=spec.id)


def _print_trace(outcome: Any, err: TextIO) -> None:
    trace = outcome.trace
    print(f"[{outcome.provider}] mode {outcome.mode}", file=err)
    if trace is not None:
        for name, origin in trace.inputs.items():
            print(f"  input {name}: {origin}", file=err)
        for sent in trace.requests:
            retry = f" ({sent.attempts} attempts)" if sent.attempts > 1 else ""
            status = sent.status if sent.status is not None else "-"
            print(f"  step {sent.step}: {sent.method} {sent.url} -> {status} in {sent.duration_ms:.0f} ms{retry}",
                  file=err)
            for k, v in sent.headers.items():
                print(f"      {k}: {v}", file=err)
            if sent.error:
                print(f"      error: {sent.error}", file=err)
        for name, source, value in trace.values:
            print(f"  {name} <- {_one_line(source)} = {_short(value)}", file=err)
        for name, source, value in trace.fields:
            print(f"  usage.{name} <- {_one_line(source)} = {_short(value)}", file=err)
    for a in outcome.attempts:
        state = "available" if a.available else "unavailable"
        tail = f" error[{a.error_kind}]={a.error}" if a.error_kind else ""
        print(f"  - strategy {a.strategy} ({a.kind}) {state} {a.duration_ms:.0f} ms{tail}", file=err)


def _one_line(source: str) -> str:
    text = " ".join(str(source).split())
    return text if len(text) <= 100 else text[:97] + "..."


def _short(value: Any) -> str:
    import json

    try:
        text = json.dumps(value, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _engine_cache_dir() -> Path | None:
    """The engine's own cache (validated specs, compiled expressions): ENGINE_CACHE_DIR (`off` disables),
    else $XDG_CACHE_HOME/engine, else ~/.cache/engine. Also turns on the compiled-expression cache."""
    from . import host
    from .expr import use_code_cache

    directory = host.engine_cache_dir(host.environment())
    use_code_cache(directory / "code" if directory else None)
    return directory


def _live_context() -> Any:
    from .config import load_config
    from .context import RunContext
    from .registry import PROVIDER_IDS

    ctx = RunContext.live()
    config = load_config(ctx.env, ctx.home, list(PROVIDER_IDS))
    ctx.config = config.entries
    return ctx


# ------------------------------------------------------------------------------------------- usage

def cmd_usage(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    import asyncio

    from .config import all_accounts, load_config, select_account
    from .context import RunContext
    from .load import SPECS_DIR, find_spec
    from .output import dumps, exit_code, payload, text_block
    from .registry import DEFAULT_ENABLED, PRIMARY, PROVIDER_IDS
    from .runner import Outcome, fetch_many
    from .validate import load_valid

    json_mode = _want_json(args)
    quiet = bool(args.json_only)
    cache_dir = _engine_cache_dir()
    if args.source and args.source.lower() not in ("auto", "web", "cli", "oauth", "api"):
        raise EngineError("usage_error", "Error: --source must be auto|web|cli|oauth|api.")
    ctx = RunContext.live()
    config = load_config(ctx.env, ctx.home, list(PROVIDER_IDS))
    ctx.config = config.entries
    available = {p.stem for p in SPECS_DIR.glob("*.yaml")}
    wanted = (args.provider or "").strip().lower()
    if wanted == "all":
        ids = [p for p in PROVIDER_IDS if p in available]
    elif wanted == "both":
        ids = [p for p in PRIMARY if p in available]
    elif wanted:
        ids = [find_spec(wanted, load=lambda path: load_valid(path, cache_dir)).id]
    else:
        ids = config.enabled(DEFAULT_ENABLED)
        missing = [p for p in ids if p not in available]
        if missing and not quiet:
            print(f"Skipping providers without a spec yet: {', '.join(missing)}", file=err)
        ids = [p for p in ids if p in available]
    if args.all_accounts and (args.account or args.account_index):
        raise EngineError("usage_error", "Error: --all-accounts cannot be combined with --account or --account-index.")
    if args.account_index is not None and args.account_index < 1:
        raise EngineError("usage_error", "Error: --account-index must be a positive integer.")
    account_flags = bool(args.account or args.account_index or args.all_accounts)
    if account_flags and len(ids) != 1:
        raise EngineError("usage_error", "Error: account selection requires a single provider.")
    specs = [load_valid(SPECS_DIR / f"{p}.yaml", cache_dir) for p in ids]
    accounts: dict[str, list[Any]] = {}
    pre_errors: dict[str, Outcome] = {}
    for spec in specs:
        entry = ctx.config_entry(spec.id)
        if not spec.data.get("token_accounts"):
            if account_flags:
                raise EngineError("usage_error", f"Error: {spec.id} does not support token accounts.")
            continue
        try:
            if args.all_accounts:
                accounts[spec.id] = list(all_accounts(entry)) or [None]
                if accounts[spec.id] == [None]:
                    select_account(entry, index=1, provider=spec.id)
            else:
                accounts[spec.id] = [select_account(entry, label=args.account, index=args.account_index,
                                                    provider=spec.id)]
        except EngineError as exc:
            pre_errors[spec.id] = Outcome(spec.id, (args.source or "auto"), error=exc)
    runnable = [s for s in specs if s.id not in pre_errors]
    outcomes = asyncio.run(fetch_many(runnable, ctx, source=args.source, accounts=accounts))
    by_id: dict[str, list[Outcome]] = {}
    for o in outcomes:
        by_id.setdefault(o.provider, []).append(o)
    ordered: list[tuple[Any, Outcome]] = []
    for spec in specs:
        for o in ([pre_errors[spec.id]] if spec.id in pre_errors else by_id.get(spec.id, [])):
            ordered.append((spec, o))
    code = 0
    for _, o in ordered:
        if o.error is not None:
            code = exit_code(o.error)
    if args.verbose and not quiet:
        for spec, o in ordered:
            print(f"[{spec.id}] fetch strategies:", file=err)
            for a in o.attempts:
                tail = f" error={a.error}" if a.error else ""
                print(f"  - {a.strategy} ({a.kind}) {'available' if a.available else 'unavailable'}{tail}", file=err)
    if json_mode:
        print(dumps([payload(o) for _, o in ordered], pretty=args.pretty), file=out)
        return code
    blocks = []
    for spec, o in ordered:
        block, error_line = text_block(o, spec, ctx.now())
        if block:
            blocks.append(block)
        if error_line and not quiet:
            print(error_line, file=err)
    if blocks:
        print("\n\n".join(blocks), file=out)
    elif not ordered and not quiet:
        print("No enabled provider has a spec yet. Enable providers in your CodexBar config "
              "(`engine list` shows what is set up here) or try `engine usage --provider all`.", file=err)
    return code


# -------------------------------------------------------------------------------------- list, etc.

def cmd_list(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .config import select_account
    from .inputs import describe_source, resolve_inputs
    from .load import all_specs
    from .output import dumps

    ctx = _live_context()
    rows: list[dict[str, Any]] = []
    for spec in all_specs():
        inputs: dict[str, dict[str, Any]] = {}
        try:
            account = select_account(ctx.config_entry(spec.id), provider=spec.id) if spec.data.get("token_accounts") \
                else None
        except EngineError:
            account = None
        resolved = resolve_inputs(spec.data.get("inputs", {}), ctx, provider=spec.id, account=account)
        for name, decl in spec.data.get("inputs", {}).items():
            sources = [describe_source(s) for s in decl.get("from", []) if "default" not in s]
            origin = resolved.origins.get(name, "")
            state = ("invalid" if name in resolved.policy_errors else
                     "default" if origin == "default" else origin or "missing")
            inputs[name] = {"sources": sources, "present": state, "secret": bool(decl.get("secret"))}
        strategies = [{"id": s["id"], "kind": s["kind"], "source": s["source"], "implementation": _implementation(s)}
                      for s in spec.data["strategies"]]
        rows.append({"id": spec.id, "name": spec.name, "cliName": spec.cli_name, "aliases": spec.aliases,
                     "strategies": strategies, "inputs": inputs})
    if _want_json(args):
        print(dumps(rows, pretty=args.pretty), file=out)
        return 0
    declarative = sum(all(not s["implementation"].startswith("hook:") for s in r["strategies"]) for r in rows)
    auth_hooked = sum(any("+auth:" in s["implementation"] for s in r["strategies"]) for r in rows)
    for r in rows:
        strat = " -> ".join(f"{s['id']}({s['kind']}, source {s['source']}, {s['implementation']})"
                            for s in r["strategies"])
        print(f"{r['id']:<12} {r['name']:<22} {strat}", file=out)
        for name, info in r["inputs"].items():
            print(f"{'':<14}{name:<14} {'[' + info['present'] + ']':<26} "
                  f"{' | '.join(info['sources']) or '(default only)'}", file=out)
    print(f"\n{len(rows)} providers; {declarative} with no provider-specific Python "
          f"({auth_hooked} signing requests with a generic auth hook)", file=out)
    return 0


def _implementation(strategy: dict[str, Any]) -> str:
    """`declarative`, `hook:<name>` (a strategy hook), or `declarative+auth:<kind>` (an auth hook such as SigV4)."""
    if "hook" in strategy:
        return f"hook:{strategy['hook']}"
    from .request import AUTH_HOOKS

    auth_hooks = sorted({step["auth"]["type"] for step in strategy.get("steps", [])
                         if step.get("auth", {}).get("type") in AUTH_HOOKS})
    return "declarative" + "".join(f"+auth:{kind}" for kind in auth_hooks)


def cmd_validate(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .load import spec_paths
    from .validate import validate_paths

    paths = list(args.paths) or spec_paths()
    problems = validate_paths(paths)
    for p in problems:
        print(p, file=out)
    if problems:
        print(f"{len(problems)} problem(s) in {len(paths)} spec(s)", file=err)
        return 1
    print(f"{len(paths)} spec(s) OK", file=out)
    return 0


def cmd_login(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    import asyncio

    from .load import find_spec
    from .login import run_login
    from .validate import load_valid

    cache_dir = _engine_cache_dir()
    spec = find_spec(args.provider, load=lambda path: load_valid(path, cache_dir))
    ctx = _live_context()
    try:
        asyncio.run(run_login(spec, ctx, out))
    except EngineError as exc:
        print(f"Error ({spec.id}): {exc.message}", file=err)
        return 1
    return 0


def cmd_demo(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .demo import run_demo

    return run_demo(json_mode=_want_json(args), pretty=args.pretty, out=out, err=err)


_fast_exit = False   # set by `engine cost`: see console()
_console = False     # running as the `engine` command (console()), not embedded (main())


def cmd_cost(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    # not RunContext: the scanner needs no HTTP, so httpx/jinja2/asyncio stay unimported
    from . import host
    from .cost import cli as cost_cli

    global _fast_exit
    if _console:
        # the process ends right after (see console()): the objects the scan made are never
        # freed, so the cyclic collector would only walk them (a full pass costs ~4 ms each time
        # the scan's own pause ends), and its big structures are left to the OS, not freed one by one
        import gc

        from .cost import scanner

        gc.disable()
        scanner.graveyard = []
    env = host.environment()
    code = int(cost_cli.run(args, env=env, home=host.home(), now=host.now(), tz=host.local_tz(env),
                            cache_dir=host.engine_cache_dir(env), stdout=out, stderr=err))
    _fast_exit = True
    return code


COMMANDS = {"run": cmd_run, "usage": cmd_usage, "list": cmd_list, "validate": cmd_validate, "demo": cmd_demo,
            "cost": cmd_cost, "login": cmd_login}


def console() -> None:
    """The `engine` command (`main` is the embeddable, testable part).

    After `engine cost` the process ends without the interpreter's teardown: freeing the scan's
    objects one by one costs ~40 ms on a large history, paid on every poll of a tray app, while
    the OS reclaims the memory at once. Output is flushed first; nothing else is pending then
    (the cache is written atomically before the report is printed).
    """
    import os

    global _console
    _console = True
    code = main()
    if _fast_exit:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    console()
