"""The `weightzoo` command: what a user asks of a zoo outside a Snakemake run.

    weightzoo status [results]                      jobs, networks, running epochs, ETA
    weightzoo plan [--configfile F ...] [--profile profiles/slurm]
    weightzoo report --to docs/replication-mnist.md   a run's report and figures into docs/

The logic lives in weightzoo.status, weightzoo.planning, weightzoo.plan (the volume by
dataset x family) and weightzoo.report; this module parses arguments and prints.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from weightzoo import config as cfg
from weightzoo import planning, status

# The repository's config/ when weightzoo is installed from its checkout (pip install -e .).
REPO_CONFIG = Path(__file__).resolve().parents[2] / "config"


def default_config_dir() -> Path:
    """config/ of the working directory when it has one (a checkout), else the package's."""
    here = Path("config")
    return here if (here / "config.yaml").is_file() else REPO_CONFIG


def _status(args: argparse.Namespace) -> int:
    print(status.render_status(status.zoo_status(args.results)))
    return 0


def _plan(args: argparse.Namespace) -> int:
    folder = default_config_dir()
    default = folder / "config.yaml"
    for line in planning.merge_warnings(default, args.configfile):
        print(f"weightzoo: warning: {line}", file=sys.stderr)
    config = cfg.load_config(default, *args.configfile)
    cfg.validate_config(config, folder / "schema.yaml")
    plan = planning.make_plan(config, args.profile)
    print(planning.render_plan(plan))
    from weightzoo.plan import plan_text

    print("\nBy dataset x family (results/ volume, dump.dtype as configured):\n")
    print(plan_text(config))
    results = Path(args.results)
    if (results / "weights").is_dir():
        diff = planning.plan_diff(config, results)
        print(
            f"against {results}/: {len(diff['added'])} training jobs added, "
            f"{len(diff['retrained'])} retrained (another recipe, architecture or dump "
            f"epochs), {len(diff['removed'])} weights files no longer planned"
        )
        for kind in ("retrained", "removed"):
            for name in diff[kind][:5]:
                print(f"  {kind}: {name}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from weightzoo import report
    from weightzoo.markdown import replace_between

    appendix, summary = [], None
    if args.readme and not args.against:
        raise ValueError("--readme needs --against: it writes the comparison of two runs")
    if args.against:
        here = args.name or Path(args.results).name
        there = args.against_name or Path(args.against).name
        ours, theirs = report.run_verdicts(args.results), report.run_verdicts(args.against)
        appendix = report.agreement_lines(ours, theirs, here, there)
        if args.readme:
            page = os.path.relpath(Path(args.to), Path(args.readme).parent)
            summary = report.agreement_summary(ours, theirs, here, there, page)
    copied = report.publish(Path(args.results) / "report.md", Path(args.to), appendix)
    print(f"wrote {args.to} and {len(copied)} figure(s) in {Path(args.to).with_suffix('')}/")
    if summary is not None:
        readme = Path(args.readme)
        text = replace_between(
            readme.read_text(), report.AGREEMENT_START, report.AGREEMENT_END, summary
        )
        readme.write_text(text)
        print(f"wrote the comparison into {readme}")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="weightzoo", description=__doc__.split("\n\n")[0])
    commands = top.add_subparsers(dest="command", required=True)
    st = commands.add_parser("status", help="jobs done / running / failed, networks, ETA")
    st.add_argument("results", nargs="?", default="results", help="results folder (results)")
    st.set_defaults(run=_status)
    pl = commands.add_parser("plan", help="jobs, networks, dump volume, scheduler requests")
    pl.add_argument(
        "--configfile",
        nargs="+",
        default=[],
        help="config files merged over config/config.yaml, as snakemake --configfile",
    )
    pl.add_argument("--profile", help="a Snakemake profile folder, e.g. profiles/slurm")
    pl.add_argument(
        "--results", default="results", help="compare with this results folder (results)"
    )
    pl.set_defaults(run=_plan)
    rp = commands.add_parser(
        "report", help="copy a run's results/report.md and its figures to a page of docs/"
    )
    rp.add_argument("--results", default="results", help="the run's folder (results)")
    rp.add_argument("--to", required=True, help="the page, e.g. docs/replication-mnist.md")
    rp.add_argument(
        "--against", help="another finished run's folder: its verdicts beside this run's"
    )
    rp.add_argument("--name", help="this run's name in that comparison (its folder's name)")
    rp.add_argument("--against-name", help="the other run's name (its folder's name)")
    rp.add_argument(
        "--readme",
        help="with --against: rewrite this file's agreement section (its markers) in place",
    )
    rp.set_defaults(run=_report)
    return top


def main(argv: list[str] | None = None) -> int:
    """Run one command; errors are one line on stderr and exit status 1."""
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except (cfg.ConfigError, planning.PlanError, FileNotFoundError) as err:
        print(f"weightzoo {args.command}: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
