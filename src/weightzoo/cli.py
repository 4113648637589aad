"""The `weightzoo` command: what a user asks of a zoo outside a Snakemake run.

    weightzoo plan --configfile config/paper.yaml   # jobs, networks, expected disk
    weightzoo report --to docs/replication-mnist.md # a run's report and figures into docs/

Each subcommand is a few lines here; its logic lives in a library module (weightzoo.plan,
weightzoo.report).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from weightzoo.config import ConfigError, load_config, validate_config

# the workflow's embedded default and schema: config/ of the working directory (the
# repository, where Snakemake runs), else of the source tree this package was installed from
_SOURCE_ROOT = Path(__file__).resolve().parents[2]


def _config_dir(explicit: Path | None) -> Path:
    for folder in (explicit, Path("config"), _SOURCE_ROOT / "config"):
        if folder is not None and (folder / "config.yaml").is_file():
            return folder
    raise SystemExit(
        "weightzoo: config/config.yaml not found; run from the repository or pass --config-dir"
    )


def _load(args: argparse.Namespace) -> dict:
    """The config Snakemake would run: the default with each --configfile merged over it,
    validated against the schema."""
    folder = _config_dir(args.config_dir)
    config = load_config(folder / "config.yaml", *args.configfile)
    try:
        return validate_config(config, folder / "schema.yaml")
    except ConfigError as err:
        raise SystemExit(f"weightzoo: config error: {err}") from None


def _plan(args: argparse.Namespace) -> int:
    from weightzoo.plan import plan_text

    print(plan_text(_load(args)))
    return 0


def _report(args: argparse.Namespace) -> int:
    from weightzoo.report import publish

    copied = publish(args.results / "report.md", args.to)
    print(f"wrote {args.to} and {len(copied)} figure(s) in {args.to.with_suffix('')}/")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="weightzoo", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    plan = commands.add_parser(
        "plan", help="jobs, networks and the expected disk volume of a config, by dataset x family"
    )
    plan.add_argument(
        "--configfile",
        nargs="*",
        type=Path,
        default=[],
        help="config files merged over config/config.yaml, as Snakemake's",
    )
    plan.add_argument("--config-dir", type=Path, help="folder of config.yaml and schema.yaml")
    plan.set_defaults(run=_plan)
    report = commands.add_parser(
        "report", help="copy a run's results/report.md and its figures to a page of docs/"
    )
    report.add_argument("--results", type=Path, default=Path("results"), help="the run's folder")
    report.add_argument("--to", type=Path, required=True, help="the page, e.g. docs/x.md")
    report.set_defaults(run=_report)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
