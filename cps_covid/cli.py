"""The ``cps-covid`` command."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

from cps_covid.errors import CpsCovidError


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2021-09-23") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cps-covid", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the update flow with the configured settings")
    run.add_argument("--as-of", type=_date, help="the day to update (default: today in America/Chicago)")
    run.add_argument("--source", help="feed URL or path (default: CPS_COVID_SOURCE_URL)")
    run.add_argument("--dry-run", action="store_true", help="validate and merge, publish nothing")

    offline = commands.add_parser("merge", help="apply one feed to a folder, offline")
    offline.add_argument(
        "--history", type=Path, required=True, help="folder with allCpsCovidData.csv and CPStotals.csv"
    )
    offline.add_argument("--fresh", type=Path, required=True, help="the fresh feed (case-list CSV or health API JSON)")
    offline.add_argument("--as-of", type=_date, required=True)
    offline.add_argument("--out", type=Path, required=True)
    offline.add_argument("--profiles", type=Path, help="JSON list of school profiles for new schools")
    offline.add_argument("--ignore", default="610377,610012,609703", help="comma-separated ids that are not schools")

    deploy = commands.add_parser("deploy", help="create or update pools, variables, deployments and automations")
    deploy.add_argument("--target", choices=["process", "ecs"], default="process", help="the work pool to deploy to")
    deploy.add_argument("--image", help="the image for the ECS pool (see make image)")

    demo = commands.add_parser("demo", help="run the flow on embedded defaults and show what it published")
    demo.add_argument("--out", type=Path, default=Path("demo-site"), help="where to copy what was published")
    demo.add_argument("--prefect-home", type=Path, default=Path(".prefect-demo"), help="the ephemeral API's home")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "merge":
            from cps_covid.offline import merge_folder

            ignore = frozenset(i.strip() for i in args.ignore.split(",") if i.strip())
            publication = merge_folder(
                args.history, args.fresh, args.as_of, args.out, ignore_ids=ignore, profiles=args.profiles
            )
            result = publication.result
            moved = f"{result.new_cases} new case(s) at {len(result.changes)} school(s)"
            print(f"{moved}; wrote {len(publication.objects)} file(s) to {args.out}")
            for event in result.events:
                print(f"  {event}")
            return 0
        if args.command == "run":
            from flows.update import run_from_cli

            return run_from_cli(as_of=args.as_of, source=args.source, dry_run=args.dry_run)
        if args.command == "deploy":
            from cps_covid.deploy import deploy

            print(deploy(target=args.target, image=args.image).text())
            return 0
        if args.command == "demo":
            from cps_covid.local.demo import main as demo

            return demo(out=args.out, prefect_home=args.prefect_home)
    except CpsCovidError as err:
        print(f"cps-covid {args.command}: {err}", file=sys.stderr)
        return 2
    return 1


if __name__ == "__main__":
    sys.exit(main())
