"""How the claims are tested: the `analysis` config slice, read once into `ClaimSettings`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ClaimSettings:
    """The claims job's settings, from the validated `analysis` config slice.

    No field has a default: config/config.yaml and its schema are the one place where the
    defaults live, so the two cannot drift apart.
    """

    statistics: tuple[str, ...]  # pooled-weight statistics tested against accuracy (claim 1)
    alpha: float  # significance level of the q-values
    min_group: int  # architectures per group in the between-architecture test
    min_cells: int  # architectures in a subset for a correlation test
    between_max_cells: int  # the between test's cells per stratum at most (a random subsample)
    n_boot: int  # bootstrap resamples of cells
    n_perm: int  # permutations of cells
    seed: int
    hist_range: tuple[float, float]  # histogram range of w and w - w0
    scaled_range: tuple[float, float]  # histogram range of w / std(w0)
    optimal_within: float
    suboptimal_below: float
    chance_margin: float
    primary_statistic: str  # the statistic that decides claim 1 (analysis.primary.claim1)
    primary_target: str  # the seed-W1 target that decides claim 2 (analysis.primary.claim2)
    correlation_bound: float  # a control's partial is negligible inside ±this (TOST)
    shape_bound: float  # claim 3: same shape within ±this (half time, area)
    size_bound: float  # claim 3: same size when the ratio is within [1/this, this]

    @classmethod
    def from_config(cls, cfg: dict) -> ClaimSettings:
        """Read the `analysis` config slice (validated against config/schema.yaml)."""
        hist, groups = cfg["hist"], cfg["groups"]
        primary, equivalence = cfg["primary"], cfg["equivalence"]
        return cls(
            statistics=tuple(cfg["statistics"]),
            alpha=float(cfg["alpha"]),
            min_group=int(cfg["min_group"]),
            min_cells=int(cfg["min_cells"]),
            between_max_cells=int(cfg["between_max_cells"]),
            n_boot=int(cfg["bootstrap"]),
            n_perm=int(cfg["permutations"]),
            seed=int(cfg["seed"]),
            hist_range=tuple(float(v) for v in hist["range"]),
            scaled_range=tuple(float(v) for v in hist["scaled_range"]),
            optimal_within=float(groups["optimal_within"]),
            suboptimal_below=float(groups["suboptimal_below"]),
            chance_margin=float(groups["chance_margin"]),
            primary_statistic=str(primary["claim1"]),
            primary_target=str(primary["claim2"]),
            correlation_bound=float(equivalence["correlation"]),
            shape_bound=float(equivalence["trajectory_shape"]),
            size_bound=float(equivalence["trajectory_size"]),
        )

    def hist_width(self, target: str, bins: int) -> float:
        """Bin width of a target's histograms (w / std(w0) has a range of its own)."""
        lo, hi = self.scaled_range if target == "scaled" else self.hist_range
        return (hi - lo) / bins
