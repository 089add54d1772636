"""`python -m codegen [--check]`: write or check every generated file."""
from __future__ import annotations

import argparse
import sys

from .generate import ROOT, outputs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m codegen", description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if a generated file is stale; write nothing")
    args = parser.parse_args(argv)
    stale = []
    for path, text in outputs().items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current != text:
            stale.append(path.relative_to(ROOT))
            if not args.check:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
    if args.check and stale:
        print("stale generated files (run `python -m codegen`):", *stale, sep="\n  ", file=sys.stderr)
        return 1
    print(("wrote " if stale else "up to date: ") + (", ".join(map(str, stale)) or "all generated files"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
