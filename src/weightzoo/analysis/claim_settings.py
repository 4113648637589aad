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
    n_boot: int  # bootstrap resamples of cells
    n_perm: int  # permutations of cells
    seed: int
    hist_range: tuple[float, float]  # histogram range of w and w - w0
    scaled_range: tuple[float, float]  # histogram range of w / std(w0)
    optimal_within: float
    suboptimal_below: float
    chance_margin: float

    @classmethod
    def from_config(cls, cfg: dict) -> ClaimSettings:
        """Read the `analysis` config slice (validated against config/schema.yaml)."""
        hist, groups = cfg["hist"], cfg["groups"]
        return cls(
            statistics=tuple(cfg["statistics"]),
            alpha=float(cfg["alpha"]),
            min_group=int(cfg["min_group"]),
            min_cells=int(cfg["min_cells"]),
            n_boot=int(cfg["bootstrap"]),
            n_perm=int(cfg["permutations"]),
            seed=int(cfg["seed"]),
            hist_range=tuple(float(v) for v in hist["range"]),
            scaled_range=tuple(float(v) for v in hist["scaled_range"]),
            optimal_within=float(groups["optimal_within"]),
            suboptimal_below=float(groups["suboptimal_below"]),
            chance_margin=float(groups["chance_margin"]),
        )

    def hist_width(self, target: str, bins: int) -> float:
        """Bin width of a target's histograms (w / std(w0) has a range of its own)."""
        lo, hi = self.scaled_range if target == "scaled" else self.hist_range
        return (hi - lo) / bins
