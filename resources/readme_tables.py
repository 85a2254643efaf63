"""README tables generated from the code: replace the text between two marker comments, and a
small command line that rewrites the README or, with --check, says whether it is current."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path


def between_markers(text: str, begin: str, end: str, table: str, what: str) -> str:
    """`text` with the part between the `begin` and `end` markers replaced by `table`."""
    start, stop = text.find(begin), text.find(end)
    if start < 0 or stop < start:
        raise ValueError(f"README has no {what} markers {begin!r} ... {end!r}")
    return text[: start + len(begin)] + "\n" + table + text[stop:]


def rewrite_main(
    argv: list[str] | None,
    what: str,
    readme: Path,
    with_table: Callable[[str], str],
    source: str,
) -> int:
    """Rewrite the README's `what` (via `with_table`), or with --check report whether it is
    current (exit 1 when it differs from `source`)."""
    parser = argparse.ArgumentParser(description=f"Rewrite README.md's {what} from {source}.")
    parser.add_argument("--check", action="store_true", help="only check, do not write")
    parser.add_argument("readme", nargs="?", type=Path, default=readme)
    args = parser.parse_args(argv)
    text = args.readme.read_text(encoding="utf-8")
    updated = with_table(text)
    if updated == text:
        print(f"{args.readme}: {what} is up to date")
        return 0
    if args.check:
        print(f"{args.readme}: {what} differs from {source}; run without --check")
        return 1
    args.readme.write_text(updated, encoding="utf-8")
    print(f"{args.readme}: {what} rewritten")
    return 0
