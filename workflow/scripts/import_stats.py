"""Snakemake adapter: statistics of the imported runs of one job."""

import _src_path  # noqa: F401  (src/ on sys.path for envs without weightzoo installed)

from weightzoo.imports import import_stats
from weightzoo.jobs import run_logged

run_logged(
    import_stats,
    snakemake.log[0],
    units=[
        {"weights": w, "stats": s, "maps": m}
        for w, s, m in zip(
            snakemake.params.weights, snakemake.output.stats, snakemake.output.maps, strict=True
        )
    ],
    hist=snakemake.params.hist,
    spectral=snakemake.params.spectral,
)
