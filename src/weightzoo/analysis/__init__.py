"""The paper's claims, tested on the zoo with the architecture cell as the unit of inference.

Seeds of one architecture share its depth, width and initial scale, so every test works on
architecture cells (`CELL_KEYS`): a cell's value is the mean over its seeds, permutations
and bootstraps move whole cells (weightzoo.resampling), and n is the number of cells (runs
are reported beside it). Tests run per dataset x family (a stratum) and pooled over strata
(per dataset, per family, all); a pooled verdict says whether the strata agree in direction.

Modules, in the order the claims job uses them:

- `claim_settings`: `ClaimSettings`, the `analysis` config slice read once;
- `groups`: optimal / intermediate / suboptimal / at chance per run, final-epoch statistics;
- `cells`: the zoo as architecture cells (`Cells`, `load_cells`), seed dispersion;
- `claims`: `run_claims`, the entry point, and claims 1 and 2's correlations over cells;
- `between`: claim 2 between architectures (optimal cells closer than suboptimal ones);
- `trajectories`: claim 3, learning trajectories compared across families;
- `inference`: one test on one stratum, pooling strata, the Benjamini-Hochberg decision;
- `rows`: `ClaimTest`, one test as a typed record, and the claims table made of them;
- `ladder`: the verdict ladder (`verdicts`, `statistic_verdicts`, vocabulary `VERDICTS`);
- `page`: results/claims.md.
"""

from weightzoo.analysis.cells import ALL, Cells, load_cells
from weightzoo.analysis.claim_settings import ClaimSettings
from weightzoo.analysis.claims import Results, run_claims
from weightzoo.analysis.groups import final_stats, label_groups
from weightzoo.analysis.ladder import (
    STATISTIC_VERDICT_SCHEMA,
    VERDICT_COLUMNS,
    VERDICT_SCHEMA,
    VERDICTS,
    consistency,
    statistic_verdicts,
    verdicts,
)
from weightzoo.analysis.page import claims_markdown
from weightzoo.analysis.rows import CLAIMS, CLAIMS_SCHEMA, MINUS, ClaimTest, claims_table

__all__ = [
    "ALL",
    "CLAIMS",
    "CLAIMS_SCHEMA",
    "MINUS",
    "STATISTIC_VERDICT_SCHEMA",
    "VERDICTS",
    "VERDICT_COLUMNS",
    "VERDICT_SCHEMA",
    "Cells",
    "ClaimSettings",
    "ClaimTest",
    "Results",
    "claims_markdown",
    "claims_table",
    "consistency",
    "final_stats",
    "label_groups",
    "load_cells",
    "run_claims",
    "statistic_verdicts",
    "verdicts",
]
