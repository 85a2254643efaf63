"""`make status`: the day's timeline for the engineer on call, from the Dagster instance of
DAGSTER_HOME and the code location's definitions.

    python -m quant_assets.on_call [--at 2024-06-03T09:10]
"""

from __future__ import annotations

import argparse
from datetime import datetime

from dagster import DagsterInstance

from quant_assets.automation.status import report
from quant_assets.automation.timeline import SHANGHAI
from quant_assets.definitions import defs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Each step of the day's timeline and its state.")
    parser.add_argument("--at", help="a Shanghai time YYYY-MM-DDTHH:MM (default: now)")
    args = parser.parse_args(argv)
    now = (
        datetime.fromisoformat(args.at).replace(tzinfo=SHANGHAI)
        if args.at
        else datetime.now(SHANGHAI)
    )
    with DagsterInstance.get() as instance:
        print(report(instance, defs.get_repository_def(), now))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
