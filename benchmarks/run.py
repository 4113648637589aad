"""Run the benchmark suite and write benchmarks/results.md.

    python benchmarks/run.py                    # everything (about 20 minutes on 2 cores)
    python benchmarks/run.py --training-only    # only the training sections (a, b, c, memory)
    python benchmarks/run.py --quick            # tiny sizes: checks that the suite runs
    python benchmarks/run.py --only stats,planning
    python benchmarks/run.py --only imports --import-rows 27000,270000   # the full zoo too

`make bench` runs the first; `make bench-training` the second. With a CUDA GPU present the
training sections also run on it and label those rows with the card.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common

# section -> (module, function); modules are imported when their section runs, so the
# statistics section's reference (WeightWatcher, the `bench` extra) is needed only there
SECTIONS = {
    "training": ("bench_training", "section_throughput"),  # (a)
    "seeds": ("bench_training", "section_seed_batching"),  # (b)
    "dumps": ("bench_training", "section_dump_overhead"),  # (c)
    "stats": ("bench_stats", "section_stats"),  # (d)
    "spectral": ("bench_spectral", "section_spectral"),  # (g)
    "planning": ("bench_workflow", "section_planning"),  # (e)
    "e2e": ("bench_workflow", "section_end_to_end"),  # (f): its run feeds (h) and (i)
    "analysis": ("bench_analysis", "section_analysis_scale"),  # (h)
    "prediction": ("bench_prediction", "section_prediction_scale"),  # (i)
    "memory": ("bench_training", "section_memory"),  # training and statistics jobs
    "calibration": ("bench_calibration", "section_calibration"),  # (j)
    "scale": ("bench_faults", "section_planning_scale"),  # (k)
    "checksums": ("bench_faults", "section_checksums"),  # (l)
    "imports": ("bench_imports", "section_imports"),  # (m)
    "precision": ("bench_precision", "section_precision"),  # (n): needs a finished run
    "replication": ("bench_replication", "section_replication"),  # (o): a finished run's log
}
TRAINING = ["training", "seeds", "dumps", "memory"]


def merged(old: str, new: list[str]) -> list[str]:
    """The sections of an earlier results file, in their order, with `new` ones replacing
    those of the same heading (new headings are appended)."""
    sections = ["## " + part.strip() for part in old.split("\n## ")[1:]]
    title = {part.splitlines()[0]: part for part in new}
    out = [title.pop(part.splitlines()[0], part) for part in sections]
    return out + list(title.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per figure (≥ 3)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check the suite")
    parser.add_argument(
        "--training-only", action="store_true", help="sections " + ", ".join(TRAINING)
    )
    parser.add_argument("--only", help="comma-separated sections: " + ", ".join(SECTIONS))
    parser.add_argument("--output", type=Path, default=common.ROOT / "benchmarks" / "results.md")
    parser.add_argument(
        "--update",
        action="store_true",
        help="replace only the sections run in an existing --output",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=common.Options().workdir,
        help="scratch folder for data, dumps and workflow copies",
    )
    parser.add_argument(
        "--import-rows",
        default="27000",
        help="rows of the imported Small CNN Zoo (section imports), comma-separated; "
        "the real zoo's size: 27000,270000",
    )
    args = parser.parse_args(argv)
    names = list(SECTIONS)
    if args.training_only:
        names = TRAINING
    if args.only:
        names = [n.strip() for n in args.only.split(",")]
        unknown = sorted(set(names) - set(SECTIONS))
        if unknown:
            parser.error(f"unknown section(s) {unknown}; choose from {list(SECTIONS)}")
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    try:
        rows = tuple(int(r) for r in args.import_rows.split(","))
    except ValueError:
        parser.error(f"--import-rows: {args.import_rows!r} is not comma-separated integers")
    opts = common.Options(repeats=args.repeats, quick=args.quick, workdir=args.workdir,
                          import_rows=rows)  # fmt: skip
    opts.workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    parts = []
    for name in names:
        t0 = time.perf_counter()
        print(f"[bench] {name} ...", flush=True)
        module, function = SECTIONS[name]
        parts.append(getattr(importlib.import_module(module), function)(opts))
        print(f"[bench] {name} done in {time.perf_counter() - t0:.0f} s", flush=True)
    header = [
        "# weightzoo benchmarks",
        "",
        f"Generated by `python benchmarks/run.py {' '.join(argv if argv is not None else sys.argv[1:])}`".rstrip()
        + f" on {datetime.date.today().isoformat()} in {time.perf_counter() - started:.0f} s.",
        "",
        f"Machine: {common.machine()}.",
        "",
        f"Every time is the median of {opts.repeats} runs with the min–max in brackets; every "
        "ratio compares figures taken in the same run. "
        + ("**--quick: tiny sizes, not for reporting.**" if opts.quick else ""),
        "",
    ]
    if args.update and args.output.is_file():
        parts = merged(args.output.read_text(), parts)
        header[2] += (
            f" It regenerated {', '.join(names)}; the other sections come from an earlier run."
        )
    text = "\n".join(header) + "\n" + "\n\n".join(parts) + "\n"
    tmp = args.output.with_suffix(".md.tmp")
    tmp.write_text(text)
    tmp.replace(args.output)
    print(f"[bench] wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
