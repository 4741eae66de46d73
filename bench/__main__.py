"""``python -m bench [--json] [--quick]`` (``make bench``): measure, then print the table or JSON.

Exit status 0 whether or not the targets are met; 1 only when the bench itself fails (a path did
not behave as the contract says, so its figures would mean nothing).
"""

from __future__ import annotations

import argparse
import json
import sys

from bench.options import BenchError, BenchOptions
from bench.render import render_markdown, report_json
from bench.run import run_bench


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="Cost and latency per execution of the workflow, on the offline emulator."
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of the markdown tables")
    parser.add_argument(
        "--quick", action="store_true", help="fewer repetitions, and contention at N = 1 and 25 only (no 500)"
    )
    args = parser.parse_args(argv)
    try:
        report = run_bench(BenchOptions(quick=args.quick))
    except BenchError as error:
        print(f"bench failed: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report_json(report), indent=2))
    else:
        print(render_markdown(report), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
