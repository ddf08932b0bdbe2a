"""The ``cps-covid`` command."""

from __future__ import annotations

import argparse
import sys
from datetime import date, datetime
from pathlib import Path

from cps_covid.errors import CpsCovidError
from cps_covid.rules.season_calendar import DISTRICT_SEASONS, MAX_GAP_DAYS
from cps_covid.settings import DEFAULT_TIMEZONE


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2021-09-23") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cps-covid", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the update flow with the configured settings")
    run.add_argument("--as-of", type=_date, help="the day to update (default: today in the configured timezone)")
    run.add_argument("--source", help="feed URL or path (default: CPS_COVID_SOURCE_URL)")
    run.add_argument("--dry-run", action="store_true", help="validate and merge, publish nothing")
    run.add_argument("--new-season", metavar="NAME", help="close the current season into carry-over column NAME first")
    run.add_argument("--fill-gap", action="store_true", help="confirm zero-filling the days since the last day column")

    dataset = commands.add_parser("dataset", help="build the open dataset (data/open/) from a history folder, offline")
    dataset.add_argument(
        "--history", type=Path, required=True, help="folder with allCpsCovidData.csv (and CPStotals.csv)"
    )
    dataset.add_argument("--out", type=Path, required=True, help="where the package's files are written")
    dataset.add_argument("--seasons", default=DISTRICT_SEASONS, help="season calendar NAME:YYYY-MM-DD,...")

    offline = commands.add_parser("merge", help="apply one feed to a folder, offline")
    offline.add_argument(
        "--history", type=Path, required=True, help="folder with allCpsCovidData.csv and CPStotals.csv"
    )
    offline.add_argument("--fresh", type=Path, required=True, help="the fresh feed (case-list CSV or health API JSON)")
    offline.add_argument("--as-of", type=_date, required=True)
    offline.add_argument("--out", type=Path, required=True)
    offline.add_argument("--profiles", type=Path, help="JSON list of school profiles for new schools")
    offline.add_argument("--new-season", metavar="NAME", help="close the current season into carry-over column NAME")
    offline.add_argument(
        "--seasons",
        default=DISTRICT_SEASONS,
        help="season calendar NAME:YYYY-MM-DD,...: a reset near a season's first day closes the season before it "
        "(empty: every reset stops)",
    )
    offline.add_argument("--fill-gap", action="store_true", help=f"confirm zero-filling more than {MAX_GAP_DAYS} days")
    offline.add_argument("--ignore", default="610377,610012,609703", help="comma-separated ids that are not schools")
    offline.add_argument(
        "--timezone", default=DEFAULT_TIMEZONE, help="tz database name of the update time on the page and in the mail"
    )

    vaccination = commands.add_parser("vaccination", help="run the vaccination and enrolment update flow")
    vaccination.add_argument("--as-of", type=_date, help="the feed's day (default: today in the configured timezone)")
    vaccination.add_argument(
        "--source", help="vaccination feed URL or path (default: CPS_COVID_VACCINATION_SOURCE_URL)"
    )
    vaccination.add_argument("--dry-run", action="store_true", help="validate and merge, publish nothing")

    serve = commands.add_parser("serve", help="run the email subscription service (uvicorn)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 in a container)")
    serve.add_argument("--port", type=int, default=8080, help="port to listen on")

    rebuild = commands.add_parser("rebuild", help="replay the archived payloads and compare with what is published")
    rebuild.add_argument("--from", dest="from_version", required=True, help="a version id of allCpsCovidData.csv")
    rebuild.add_argument("--out", type=Path, help="write the rebuilt table here")

    rollback = commands.add_parser("rollback", help="restore the published set as it was at a time")
    rollback.add_argument(
        "--to",
        dest="to_time",
        required=True,
        type=datetime.fromisoformat,
        help="ISO time with offset, e.g. 2021-09-23T14:00:00-05:00",
    )
    rollback.add_argument("--dry-run", action="store_true", help="say what would be restored")

    deploy = commands.add_parser("deploy", help="create or update pools, variables, deployments and automations")
    deploy.add_argument("--target", choices=["process", "ecs"], default="process", help="the work pool to deploy to")
    deploy.add_argument("--image", help="the image for the ECS pool (see make image)")
    deploy.add_argument("--stack", help="read the AWS ids from this CloudFormation stack's outputs")
    deploy.add_argument(
        "--paused",
        action="append",
        default=[],
        metavar="DEPLOYMENT",
        help="deploy this one with its schedules inactive (repeatable; e.g. cps-covid-watch on a staging server)",
    )

    stack = commands.add_parser("stack", help="the local stack: Prefect UI, moto, a replayed season, a worker")
    stack.add_argument("action", choices=["up", "down", "break", "heal", "site", "serve"])
    stack.add_argument("--state", type=Path, help="the stack's folder (default .stack/)")
    stack.add_argument("--from", dest="first_day", type=_date, help="first replayed day (default 2021-09-13)")
    stack.add_argument("--minutes-per-day", type=float, help="wall minutes per replayed day (default 2)")
    stack.add_argument("--status", type=int, default=404, help="what the broken feed answers (break)")
    demo = commands.add_parser("demo", help="run the flow on embedded defaults and show what it published")
    demo.add_argument("--out", type=Path, default=Path("demo-site"), help="where to copy what was published")
    demo.add_argument("--prefect-home", type=Path, default=Path(".prefect-demo"), help="the ephemeral API's home")
    demo.add_argument(
        "--cases-only",
        action="store_true",
        help="skip the vaccination flow (a front end of before 2022-04, which reads no vaccination rows)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "dataset":
            from cps_covid.operations.dataset import build_dataset

            written, warnings = build_dataset(args.history, args.out, seasons=args.seasons)
            for warning in warnings:
                print(f"warning: {warning}", file=sys.stderr)
            print(f"wrote {len(written)} file(s) of the open dataset to {args.out}: {', '.join(written)}")
            return 0
        if args.command == "merge":
            from cps_covid.operations.offline import merge_folder

            ignore = frozenset(i.strip() for i in args.ignore.split(",") if i.strip())
            publication = merge_folder(
                args.history,
                args.fresh,
                args.as_of,
                args.out,
                ignore_ids=ignore,
                profiles=args.profiles,
                new_season=args.new_season,
                seasons=args.seasons,
                fill_gap=args.fill_gap,
                timezone=args.timezone,
            )
            result = publication.result
            moved = f"{result.added_cases} new case(s) at {result.schools_affected} school(s)"
            removed = result.added_cases - result.net_cases
            if removed:
                moved += f", {removed} removed by the district"
            print(f"{moved}; wrote {len(publication.objects)} file(s) to {args.out}")
            for event in result.events:
                print(f"  {event}")
            for warning in publication.warnings:
                print(f"  warning: {warning}")
            return 0
        if args.command == "run":
            from flows.update import run_from_cli

            return run_from_cli(
                as_of=args.as_of,
                source=args.source,
                dry_run=args.dry_run,
                new_season=args.new_season,
                fill_gap=args.fill_gap,
            )
        if args.command == "vaccination":
            from flows.vaccination import run_from_cli as run_vaccination

            return run_vaccination(as_of=args.as_of, source=args.source, dry_run=args.dry_run)
        if args.command == "serve":
            from cps_covid.service.server import serve

            return serve(args.host, args.port)
        if args.command in ("rebuild", "rollback"):
            import os

            from cps_covid.operations import recovery
            from cps_covid.settings import Settings

            settings = Settings.load(use_prefect=bool(os.environ.get("PREFECT_API_URL")))
            if args.command == "rebuild":
                report = recovery.rebuild(settings, args.from_version, args.out)
                print(report.text())
                return 0 if report.identical else 1
            restored = recovery.rollback(settings, args.to_time, dry_run=args.dry_run)
            verb = "would restore" if args.dry_run else "restored"
            print(f"{verb} {len(restored)} object(s) as of {args.to_time.isoformat()}: {', '.join(restored) or 'none'}")
            return 0
        if args.command == "deploy":
            from cps_covid.operations.deploy import deploy

            print(deploy(target=args.target, image=args.image, stack=args.stack, paused=args.paused).text())
            return 0
        if args.command == "stack":
            from local import stack as local_stack  # a checkout's dev stack: not in the image

            return local_stack.run(args)
        if args.command == "demo":
            from local.demo import main as demo

            return demo(out=args.out, prefect_home=args.prefect_home, vaccination=not args.cases_only)
    except CpsCovidError as err:
        print(f"cps-covid {args.command}: {err}", file=sys.stderr)
        return 2
    return 1


if __name__ == "__main__":
    sys.exit(main())
