"""(j) Calibration and power of the verdicts, measured on simulated zoos.

Null zoos (statistic and accuracy independent given log size, both loading on it, with a
cell random effect and averaged seed noise) and planted zoos (a true partial given size)
at the cell counts the claims use; the verdict ladder of weightzoo.controls runs on each.
The rates are the type-I error and power a reader of results/claims.md should expect.
"""

from __future__ import annotations

import re
import time

import common
import numpy as np

from weightzoo import calibration

ALPHA, BOUND = 0.05, 0.2  # config analysis.alpha and analysis.equivalence.correlation
SHAPE_BOUND, SIZE_BOUND = 0.1, 1.25  # analysis.equivalence.trajectory_shape / _size
STATISTICS = 6  # claim 1's listed statistics, for the strongest-statistic reading
DOCS = common.ROOT / "docs" / "claims.md"  # its calibration block is this section's tables
BLOCK = re.compile(r"(<!-- calibration:start -->\n).*?(<!-- calibration:end -->)", re.DOTALL)


def update_docs(tables: str, path=DOCS) -> None:
    """Replace the generated calibration block of docs/claims.md with `tables`."""
    text = path.read_text()
    if not BLOCK.search(text):
        raise ValueError(f"{path} has no <!-- calibration:start/end --> block")
    path.write_text(BLOCK.sub(lambda m: m.group(1) + tables + "\n" + m.group(2), text))


def section_calibration(opts: common.Options) -> str:
    """The calibration tables: verdict rates per cells x true partial, maxT, claim 3."""
    head = "## (j) Calibration and power of the verdicts"
    zoos, n_perm = (60, 99) if opts.quick else (1000, 299)
    cells = (5, 8) if opts.quick else calibration.CELLS
    t0 = time.perf_counter()
    rates = calibration.calibration(cells, zoos=zoos, n_perm=n_perm, alpha=ALPHA, bound=BOUND)
    rng = np.random.default_rng(1)
    maxt = [
        (
            n,
            *calibration.maxt_rates(
                n, statistics=STATISTICS, zoos=zoos, n_perm=n_perm, alpha=ALPHA, rng=rng
            ),
        )
        for n in cells
    ]
    scenarios = {
        "same curves": (0.2, 1.0),
        "half time 0.2 vs 0.5": (0.5, 1.0),
        "change 1.5×": (0.2, 1.5),
    }
    traj_rows = []
    for n in cells[:3]:
        for name, (half_b, scale_b) in scenarios.items():
            found = calibration.trajectory_rates(
                n,
                half_b=half_b,
                scale_b=scale_b,
                zoos=zoos,
                alpha=ALPHA,
                shape_bound=SHAPE_BOUND,
                size_bound=SIZE_BOUND,
                rng=rng,
            )
            traj_rows.append(
                [n, name]
                + [
                    " / ".join(f"{100 * found[s][v]:.0f}" for v in ("same", "different"))
                    for s in ("half_time", "area", "size_ratio")
                ]
            )
    seconds = time.perf_counter() - t0
    low, high = calibration.band(ALPHA, zoos)
    tables = [
        "### Claims 1 and 2: the size ladder",
        "",
        *calibration.markdown(rates, alpha=ALPHA, n_perm=n_perm, bound=BOUND),
        "",
        "### The strongest of several statistics",
        "",
        f"Complete null (accuracy independent of {STATISTICS} statistics that correlate 0.5 "
        f"with each other), {zoos} zoos: the rate at which the strongest statistic reads "
        f"significant, unadjusted and maxT-adjusted (band [{low:.3f}, {high:.3f}]).",
        "",
        common.table(
            ["cells", "strongest, unadjusted p < α", "strongest, maxT-adjusted p < α"],
            [[n, f"{100 * u:.1f} %", f"{100 * a:.1f} %"] for n, u, a in maxt],
        ),
        "",
        "### Claim 3: families compared on cell summaries",
        "",
        f"Pairs of families with the cells per family below, {zoos} pairs each, Welch t "
        "intervals over cells; each cell a saturating curve with 20 % spread in half time "
        f'and scale. "same" needs the 90 % CI within ±{SHAPE_BOUND} (half time, area) or '
        f'[1/{SIZE_BOUND}, {SIZE_BOUND}] (size ratio); "different" a 95 % CI excluding 0 '
        "(1). Cells: % same / % different (the rest inconclusive).",
        "",
        common.table(
            ["cells per family", "families", "half time", "area", "size ratio"], traj_rows
        ),
    ]
    if not opts.quick:
        update_docs("\n".join(tables) + "\n")
    lines = [
        head,
        "",
        __doc__.split("\n\n", 1)[1].strip(),
        "",
        *tables,
        "",
        f"Computed in {seconds:.0f} s; the same tables are in docs/claims.md.",
    ]
    return "\n".join(lines)
