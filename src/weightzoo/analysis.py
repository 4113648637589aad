"""The paper's claims, tested on the zoo.

Inputs are the runs table and the statistics table (weightzoo.stats); every test comes from
scipy (pearsonr, spearmanr, bootstrap, permutation_test, levene, false_discovery_control).

1. Weight statistics correlate with performance: Pearson and Spearman between each listed
   statistic of the final whole-network weights and final test accuracy, per dataset x
   family and pooled, with percentile-bootstrap confidence intervals for Spearman's rho.
2. Successful networks resemble each other, poor ones scatter: mean pairwise 1-Wasserstein
   distance between runs' weight distributions within the optimal group vs within the
   suboptimal group, one-sided permutation test; on the raw weights and on the change from
   initialisation (w - w0), for the pooled network and per tensor; plus a Brown-Forsythe
   test of the dispersion of each listed statistic.
3. MLP, CNN and ViT learn alike: per family, the median trajectory over training progress of
   std(w_t)/std(w_0) and ||w_t - w_0|| / ||w_0||; families compared pairwise by Pearson r
   between their median trajectories at the dumped progress points, and by the direction
   of change.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable

import numpy as np
import polars as pl
from scipy import stats as sps
from scipy.spatial.distance import pdist, squareform

from weightzoo.stats import WEIGHT_POOL as POOL

RUN_KEYS = ["dataset", "family", "arch", "seed"]
CLAIMS = {
    1: "Weight statistics correlate with performance",
    2: "Successful networks resemble each other in weight statistics and distribution; "
    "poor ones scatter",
    3: "MLP, CNN and ViT parameters show similar learning characteristics",
}


# ---------------------------------------------------------------------------------------
# Groups
# ---------------------------------------------------------------------------------------


def label_groups(
    runs: pl.DataFrame, optimal_within: float, suboptimal_below: float
) -> pl.DataFrame:
    """Label each run optimal / intermediate / suboptimal by its architecture's accuracy.

    Per dataset and family, an architecture is optimal when its mean final test accuracy is
    within `optimal_within` of the best architecture's, suboptimal when it is more than
    `suboptimal_below` below it, intermediate otherwise. The rule is kept in the table.
    """
    if suboptimal_below < optimal_within:
        raise ValueError("suboptimal_below must not be smaller than optimal_within")
    by = ["dataset", "family"]
    archs = (
        runs.group_by(*by, "arch")
        .agg(arch_mean_acc=pl.col("final_test_acc").mean())
        .with_columns(best_arch_acc=pl.col("arch_mean_acc").max().over(by))
        .with_columns(
            group=pl.when(pl.col("arch_mean_acc") >= pl.col("best_arch_acc") - optimal_within)
            .then(pl.lit("optimal"))
            .when(pl.col("arch_mean_acc") < pl.col("best_arch_acc") - suboptimal_below)
            .then(pl.lit("suboptimal"))
            .otherwise(pl.lit("intermediate")),
            group_rule=pl.lit(
                f"optimal: arch mean test acc >= best - {optimal_within}; "
                f"suboptimal: < best - {suboptimal_below}; else intermediate"
            ),
        )
    )
    return runs.join(archs, on=[*by, "arch"], how="left")


def final_stats(stats: pl.LazyFrame, groups: pl.DataFrame) -> pl.DataFrame:
    """Statistics of each run's final dumped epoch, joined with its group and accuracy."""
    cols = [*RUN_KEYS, "epochs_run", "status", "final_test_acc", "group", "n_params"]
    return (
        stats.join(groups.select(cols).lazy(), on=RUN_KEYS, how="inner")
        .filter(pl.col("epoch") == pl.col("epochs_run"))
        .sort(*RUN_KEYS, "scope", "target")  # a fixed order: same seed, same p-values
        .collect()
    )


def _subsets(df: pl.DataFrame) -> Iterable[tuple[str, str, pl.DataFrame]]:
    """Each dataset x family, then everything pooled ('all', 'all')."""
    for (dataset, family), part in df.sort("dataset", "family").group_by(
        "dataset", "family", maintain_order=True
    ):
        yield dataset, family, part
    yield "all", "all", df


def _row(claim: int, dataset: str, family: str, **fields) -> dict:
    base = {"claim": claim, "dataset": dataset, "family": family, "scope": POOL, "target": "w",
            "statistic": None, "test": None, "n_a": None, "n_b": None, "estimate": None,
            "ci_low": None, "ci_high": None, "p_value": None, "supported": None, "note": ""}  # fmt: skip
    return base | fields


# ---------------------------------------------------------------------------------------
# Claim 1: statistics vs accuracy
# ---------------------------------------------------------------------------------------


def correlation_tests(final: pl.DataFrame, statistics: list[str], *, alpha: float,
                      n_boot: int, seed: int, min_group: int) -> list[dict]:  # fmt: skip
    """Pearson and Spearman of each statistic vs final test accuracy (pooled weights)."""
    df = final.filter(scope=POOL, target="w", status="ok")
    rows = []
    for dataset, family, part in _subsets(df):
        acc = part["final_test_acc"].to_numpy()
        for stat in statistics:
            x = part[stat].to_numpy().astype(np.float64)
            ok = np.isfinite(x)
            xs, ys = x[ok], acc[ok]
            common = {"statistic": stat, "n_a": int(ok.sum())}
            if len(xs) < max(min_group, 3):
                rows.append(_row(1, dataset, family, test="spearman", **common,
                                 note=f"too few runs for a test ({len(xs)})"))  # fmt: skip
                continue
            if np.ptp(xs) == 0 or np.ptp(ys) == 0:
                rows.append(_row(1, dataset, family, test="spearman", **common,
                                 note="constant values: correlation undefined"))  # fmt: skip
                continue
            rng = np.random.default_rng(seed)
            # permutation p-values: exact for small groups, where t-approximations mislead
            pearson = sps.pearsonr(
                xs, ys, method=sps.PermutationMethod(n_resamples=n_boot, rng=rng)
            )
            rho = sps.spearmanr(xs, ys).statistic
            spearman_p = sps.permutation_test(
                (xs,), lambda a, ys=ys: sps.spearmanr(a, ys).statistic, permutation_type="pairings",
                n_resamples=n_boot, rng=rng,
            ).pvalue  # fmt: skip
            ci = sps.bootstrap(
                (xs, ys), lambda a, b: sps.spearmanr(a, b).statistic, paired=True,
                vectorized=False, n_resamples=n_boot, method="percentile", rng=rng,
            ).confidence_interval  # fmt: skip
            rows.append(_row(1, dataset, family, test="pearson", **common,
                             estimate=float(pearson.statistic), p_value=float(pearson.pvalue)))  # fmt: skip
            rows.append(_row(1, dataset, family, test="spearman", **common,
                             estimate=float(rho), p_value=float(spearman_p),
                             ci_low=_finite(ci.low), ci_high=_finite(ci.high)))  # fmt: skip
    return _decide(rows, alpha)


def _finite(v) -> float | None:
    return float(v) if np.isfinite(v) else None


def _decide(rows: list[dict], alpha: float, tests: tuple[str, ...] = ("spearman",)) -> list[dict]:
    """Benjamini-Hochberg q-values across the claim's primary tests; supported if q < alpha."""
    primary = [r for r in rows if r["test"] in tests and r["p_value"] is not None]
    if primary:
        q = sps.false_discovery_control([r["p_value"] for r in primary])
        for r, qv in zip(primary, q, strict=True):
            r["q_value"] = float(qv)
            r["supported"] = bool(qv < alpha and r.get("direction_ok", True))
    for r in rows:
        r.setdefault("q_value", None)
        r.pop("direction_ok", None)
    return rows


# ---------------------------------------------------------------------------------------
# Claim 2: resemblance within groups
# ---------------------------------------------------------------------------------------


def w1_matrix(hists: np.ndarray, hist_range: tuple[float, float]) -> np.ndarray:
    """Pairwise 1-Wasserstein distances between normalised histograms on one fixed grid.

    W1 = integral |F_a - F_b| dx, the L1 distance between the cumulative distributions
    times the bin width.
    """
    hists = np.asarray(hists, dtype=np.float64)
    width = (hist_range[1] - hist_range[0]) / hists.shape[1]
    return squareform(pdist(np.cumsum(hists, axis=1), "cityblock")) * width


def _mean_within(dist: np.ndarray, idx: np.ndarray) -> float:
    k = len(idx)
    return float(dist[np.ix_(idx, idx)].sum() / (k * (k - 1)))


def group_distance_test(dist: np.ndarray, is_optimal: np.ndarray, n_perm: int,
                        seed: int) -> tuple[float, float, float]:  # fmt: skip
    """Mean pairwise distance within the optimal and suboptimal groups, and the one-sided
    permutation p-value for 'optimal runs are closer to each other than suboptimal runs'."""
    opt, sub = np.flatnonzero(is_optimal), np.flatnonzero(~is_optimal)
    res = sps.permutation_test(
        (opt, sub), lambda a, b: _mean_within(dist, a) - _mean_within(dist, b),
        permutation_type="independent", vectorized=False, n_resamples=n_perm,
        alternative="less", rng=np.random.default_rng(seed),
    )  # fmt: skip
    return _mean_within(dist, opt), _mean_within(dist, sub), float(res.pvalue)


def resemblance_tests(final: pl.DataFrame, statistics: list[str], hist_range, *, alpha: float,
                      n_perm: int, seed: int, min_group: int) -> list[dict]:  # fmt: skip
    """Claim 2 on raw weights and on w - w0, pooled and per tensor, plus dispersion tests."""
    df = final.filter(pl.col("group").is_in(["optimal", "suboptimal"]), status="ok")
    rows = []
    for dataset, family, part in _subsets(df):
        scopes = part.filter(kind=pl.lit("weight")).get_column("scope").unique().sort().to_list()
        for scope in [POOL, *scopes]:
            for target in ("w", "delta"):
                sel = part.filter(scope=scope, target=target).sort(RUN_KEYS)
                is_opt = (sel["group"] == "optimal").to_numpy()
                common = {"scope": scope, "target": target, "test": "w1_permutation",
                          "n_a": int(is_opt.sum()), "n_b": int((~is_opt).sum())}  # fmt: skip
                if min(common["n_a"], common["n_b"]) < min_group:
                    rows.append(_row(2, dataset, family, **common,
                                     note=f"a group has fewer than {min_group} runs: no test"))  # fmt: skip
                    continue
                dist = w1_matrix(np.stack(sel["hist"].to_numpy()), hist_range)
                d_opt, d_sub, p = group_distance_test(dist, is_opt, n_perm, seed)
                rows.append(_row(2, dataset, family, **common, statistic="mean pairwise W1",
                                 estimate=d_opt / d_sub if d_sub > 0 else None, p_value=p,
                                 note=f"within optimal {d_opt:.4g}, within suboptimal {d_sub:.4g}"
                                 " (estimate = ratio)", direction_ok=d_opt < d_sub))  # fmt: skip
        pool = part.filter(scope=POOL, target="w")
        opt, sub = pool.filter(group="optimal"), pool.filter(group="suboptimal")
        for stat in statistics:
            a, b = opt[stat].drop_nans().to_numpy(), sub[stat].drop_nans().to_numpy()
            common = {"statistic": stat, "test": "brown_forsythe", "n_a": len(a), "n_b": len(b)}
            if min(len(a), len(b)) < min_group:
                rows.append(_row(2, dataset, family, **common,
                                 note=f"a group has fewer than {min_group} runs: no test"))  # fmt: skip
                continue
            res = sps.levene(a, b, center="median")
            sd_a, sd_b = float(np.std(a)), float(np.std(b))
            rows.append(_row(2, dataset, family, **common,
                             estimate=sd_a / sd_b if sd_b > 0 else None,
                             p_value=float(res.pvalue), direction_ok=sd_a < sd_b,
                             note=f"std across runs: optimal {sd_a:.4g}, suboptimal {sd_b:.4g} "
                             "(estimate = ratio)"))  # fmt: skip
    return _decide(rows, alpha, tests=("w1_permutation", "brown_forsythe"))


# ---------------------------------------------------------------------------------------
# Claim 3: learning trajectories across families
# ---------------------------------------------------------------------------------------


def trajectories(stats: pl.LazyFrame, groups: pl.DataFrame) -> pl.DataFrame:
    """Per run and dumped epoch: progress (epoch / last epoch), std(w_t)/std(w_0) and
    ||w_t - w_0|| / ||w_0|| of the whole network's weights."""
    runs = groups.filter(status="ok").select(*RUN_KEYS, "epochs_run", "group").lazy()
    pool = stats.filter(scope=POOL).join(runs, on=RUN_KEYS, how="inner")
    w = pool.filter(target="w").select(*RUN_KEYS, "epoch", "epochs_run", "group", "std", "l2")
    delta = pool.filter(target="delta").select(*RUN_KEYS, "epoch", delta_l2="l2")
    return (
        w.join(delta, on=[*RUN_KEYS, "epoch"], how="left")
        .with_columns(
            progress=pl.col("epoch") / pl.col("epochs_run"),
            rel_std=pl.col("std")
            / pl.col("std").filter(pl.col("epoch") == 0).first().over(RUN_KEYS),
            rel_dist=pl.col("delta_l2")
            / pl.col("l2").filter(pl.col("epoch") == 0).first().over(RUN_KEYS),
        )  # fmt: skip
        .select(*RUN_KEYS, "group", "epoch", "progress", "rel_std", "rel_dist")
        .sort(*RUN_KEYS, "epoch")
        .collect()
    )


def median_trajectories(traj: pl.DataFrame) -> pl.DataFrame:
    """Median over runs of each family's trajectory, per dataset and pooled ('all')."""
    per_dataset = traj.group_by("dataset", "family", "progress").agg(
        pl.col("rel_std", "rel_dist").median(), runs=pl.len()
    )
    pooled = traj.group_by("family", "progress").agg(
        pl.col("rel_std", "rel_dist").median(), runs=pl.len()
    ).with_columns(dataset=pl.lit("all"))  # fmt: skip
    return pl.concat([per_dataset, pooled.select(per_dataset.columns)]).sort(
        "dataset", "family", "progress"
    )


def family_similarity_tests(medians: pl.DataFrame, *, alpha: float) -> list[dict]:
    """Pairwise Pearson r between families' median trajectories at shared progress points."""
    rows = []
    for (dataset,), part in medians.group_by("dataset", maintain_order=True):
        families = sorted(part["family"].unique())
        for measure in ("rel_std", "rel_dist"):
            for fa, fb in itertools.combinations(families, 2):
                a = part.filter(family=fa).select("progress", measure).drop_nulls().drop_nans()
                b = part.filter(family=fb).select("progress", measure).drop_nulls().drop_nans()
                # compare at the union of both families' dumped progress points, each curve
                # linearly interpolated where it has no dump (exact when schedules match)
                grid = np.union1d(a["progress"].to_numpy(), b["progress"].to_numpy())
                curve_a = np.interp(grid, a["progress"].to_numpy(), a[measure].to_numpy())
                curve_b = np.interp(grid, b["progress"].to_numpy(), b[measure].to_numpy())
                both = pl.DataFrame({"progress": grid, "a": curve_a, "b": curve_b})
                common = {"scope": POOL, "statistic": measure, "test": "pearson_trajectory",
                          "n_a": both.height, "n_b": both.height}  # fmt: skip
                pair = f"{fa} vs {fb}"
                if min(a.height, b.height) < 3 or np.ptp(curve_a) == 0 or np.ptp(curve_b) == 0:
                    rows.append(_row(3, dataset, pair, **common,
                                     note="fewer than 3 dumped epochs or a flat trajectory: "
                                     "no test"))  # fmt: skip
                    continue
                res = sps.pearsonr(both["a"].to_numpy(), both["b"].to_numpy())
                change_a = both["a"][-1] - both["a"][0]
                change_b = both["b"][-1] - both["b"][0]
                same_direction = bool(np.sign(change_a) == np.sign(change_b))
                rows.append(_row(3, dataset, pair, **common, estimate=float(res.statistic),
                                 p_value=float(res.pvalue),
                                 direction_ok=same_direction and res.statistic > 0,
                                 note=f"change over training: {fa} {change_a:+.3g}, "
                                 f"{fb} {change_b:+.3g}"))  # fmt: skip
    return _decide(rows, alpha, tests=("pearson_trajectory",))


# ---------------------------------------------------------------------------------------
# The claims table and its readable form
# ---------------------------------------------------------------------------------------

CLAIMS_SCHEMA = {
    "claim": pl.Int32, "claim_text": pl.String, "dataset": pl.String, "family": pl.String,
    "scope": pl.String, "target": pl.String, "statistic": pl.String, "test": pl.String,
    "n_a": pl.Int64, "n_b": pl.Int64, "estimate": pl.Float64, "ci_low": pl.Float64,
    "ci_high": pl.Float64, "p_value": pl.Float64, "q_value": pl.Float64,
    "supported": pl.Boolean, "note": pl.String,
}  # fmt: skip


def claims_table(rows: list[dict]) -> pl.DataFrame:
    for r in rows:
        r["claim_text"] = CLAIMS[r["claim"]]
    return pl.DataFrame(rows, schema=CLAIMS_SCHEMA)


def verdicts(claims: pl.DataFrame) -> pl.DataFrame:
    """One line per claim and subset (dataset x family, or 'all'), from its primary tests.

    1: supported when at least one statistic correlates with accuracy (q < alpha); the
       significant ones are listed.
    2: supported when optimal runs are closer to each other than suboptimal runs both in raw
       weights and in the change from initialisation (pooled network); significant on raw
       weights only is reported as such, since it can be an artefact of initialisation.
    3: supported when every pair of families has positively correlated trajectories with the
       same direction of change, for both measures.
    """
    out = []
    keys = ["claim", "dataset", "family"]
    for (claim, dataset, family), part in claims.group_by(keys, maintain_order=True):
        if claim == 1:
            part = part.filter(test="spearman")
        elif claim == 2:
            part = part.filter(test="w1_permutation", scope=POOL)
        tested = part.filter(pl.col("supported").is_not_null())
        good = tested.filter(pl.col("supported"))
        detail = ""
        if tested.height == 0:
            verdict = "not testable"
            detail = part["note"][0] if part.height else ""
        elif claim == 1:
            verdict = "supported" if good.height else "not supported"
            detail = ", ".join(good["statistic"]) if good.height else "no statistic significant"
        elif claim == 2:
            sig = set(good["target"])
            verdict = ("supported" if {"w", "delta"} <= sig
                       else "raw weights only" if sig == {"w"} else "not supported")  # fmt: skip
            detail = "; ".join(f"{r['target']}: ratio {_fmt(r['estimate'])}, p {_fmt(r['p_value'])}"
                               for r in tested.iter_rows(named=True))  # fmt: skip
        else:
            verdict = "supported" if good.height == tested.height else "not supported"
            detail = ", ".join(f"{r['family']} {r['statistic']} r={_fmt(r['estimate'])}"
                               for r in tested.iter_rows(named=True) if not r["supported"])  # fmt: skip
        out.append({"claim": claim, "dataset": dataset, "family": family, "verdict": verdict,
                    "supported_tests": good.height, "tests": tested.height,
                    "untestable": part.height - tested.height, "detail": detail})  # fmt: skip
    schema = {"claim": pl.Int32, "dataset": pl.String, "family": pl.String, "verdict": pl.String,
              "supported_tests": pl.Int64, "tests": pl.Int64, "untestable": pl.Int64,
              "detail": pl.String}  # fmt: skip
    return pl.DataFrame(out, schema=schema)


def _fmt(v, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def claims_markdown(claims: pl.DataFrame, rule: str, alpha: float, n_runs: dict) -> str:
    """results/claims.md: the verdicts first, then every test with its numbers."""
    lines = ["# The paper's claims, tested", "",
             f"Runs: {json.dumps(n_runs)}. Groups: {rule}. Significance: α = {alpha}, "
             "permutation p-values, Benjamini–Hochberg q-values within each claim; a test "
             "supports its claim when q < α and the effect has the claimed direction.", "",
             "Verdicts: claim 1 is supported where at least one statistic correlates with test "
             "accuracy; claim 2 where optimal runs are closer to each other than suboptimal "
             "runs both in raw weights and in the change from initialisation (raw weights alone "
             "can reflect initialisation scale, which depends on layer width); claim 3 where "
             "every pair of families has positively correlated trajectories with the same "
             "direction of change.", ""]  # fmt: skip
    v = verdicts(claims)
    primary = {1: "Spearman ρ of each statistic vs test accuracy",
               2: "W1 permutation test, pooled weights (raw and w − w0)",
               3: "Pearson r between family median trajectories"}  # fmt: skip
    for claim, text in CLAIMS.items():
        lines += [f"## Claim {claim}: {text}", "", f"Primary test: {primary[claim]}.", "",
                  "| dataset | family | verdict | supported / tests | not testable | detail |",
                  "|---|---|---|---|---|---|"]  # fmt: skip
        for r in v.filter(claim=claim).iter_rows(named=True):
            lines.append(f"| {r['dataset']} | {r['family']} | **{r['verdict']}** | "
                         f"{r['supported_tests']} / {r['tests']} | {r['untestable']} | "
                         f"{r['detail']} |")  # fmt: skip
        lines += ["", "| dataset | family | scope | target | statistic | test | n | estimate "
                  "| 95% CI | p | q | supported | note |", "|" + "---|" * 13]  # fmt: skip
        detail = claims.filter(claim=claim)
        if claim == 2:  # per-tensor rows are in the Parquet table; keep the page readable
            detail = detail.filter((pl.col("scope") == POOL) | (pl.col("test") != "w1_permutation"))
        for r in detail.iter_rows(named=True):
            n = r["n_a"] if r["n_b"] is None or r["claim"] != 2 else f"{r['n_a']} / {r['n_b']}"
            ci = "–" if r["ci_low"] is None else f"[{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]"
            supported = {True: "yes", False: "no", None: "–"}[r["supported"]]
            lines.append(
                f"| {r['dataset']} | {r['family']} | {r['scope']} | {r['target']} | "
                f"{_fmt(r['statistic'])} | {r['test']} | {n} | {_fmt(r['estimate'])} | {ci} | "
                f"{_fmt(r['p_value'])} | {_fmt(r['q_value'])} | {supported} | {r['note']} |"
            )
        lines.append("")
    return "\n".join(lines)


def heatmap_distances(final: pl.DataFrame, hist_range, max_runs: int) -> pl.DataFrame:
    """Run x run W1 distances of the pooled weights for one dataset x family, long format.

    Picks the first dataset's family with the most runs; above `max_runs` runs, keeps runs
    evenly spaced in accuracy rank, so the figure stays small at any scale.
    """
    pool = final.filter(scope=POOL, target="w", status="ok")
    schema = {"dataset": pl.String, "family": pl.String, "run_a": pl.String, "run_b": pl.String,
              "acc_a": pl.Float64, "acc_b": pl.Float64, "w1": pl.Float64}  # fmt: skip
    if pool.height == 0:
        return pl.DataFrame(schema=schema)
    dataset = pool["dataset"].sort()[0]
    family = pool.filter(dataset=dataset).group_by("family").len().sort("len", "family",
                                                                        descending=[True, False])[0, "family"]  # fmt: skip
    runs = pool.filter(dataset=dataset, family=family).sort("final_test_acc", *RUN_KEYS)
    if runs.height > max_runs:
        runs = runs[np.unique(np.linspace(0, runs.height - 1, max_runs).round().astype(int))]
    dist = w1_matrix(np.stack(runs["hist"].to_numpy()), hist_range)
    labels = (runs["arch"] + "/s" + runs["seed"].cast(pl.String)).to_numpy()
    acc = runs["final_test_acc"].to_numpy()
    i, j = np.indices(dist.shape).reshape(2, -1)
    return pl.DataFrame({"dataset": dataset, "family": family, "run_a": labels[i],
                         "run_b": labels[j], "acc_a": acc[i], "acc_b": acc[j],
                         "w1": dist.ravel()}, schema=schema)  # fmt: skip
