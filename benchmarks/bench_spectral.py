"""(g) Heavy-tailed spectra vs WeightWatcher: the same power-law fit, its agreement and cost.

Reference: WeightWatcher 0.7.7, `WeightWatcher(model=m).analyze(min_evals=50,
pl_package="ww")`: its own power-law fitter (`WWFit`, the default, which does not use the
`powerlaw` package) on every Linear / Conv2d weight matrix with at least 50 eigenvalues, a
conv kernel as its pooled kernel-position matrices. weightzoo: `spectral.spectral_table` of
the same matrices with `pool_kernel_positions=True`. Four tables, in one process with the
same torch and BLAS threads on both sides:

1. agreement per model: the largest |Δ| of alpha, alpha_weighted and D (and of xmin, n_tail
   and the log norms) over the matrices WeightWatcher fits;
2. time per matrix: analyze() ÷ matrices against spectral_table without nulls (the same
   outputs) and with NULL_DRAWS nulls (what the statistics job would add), and the fit
   alone (`WWFit` against `power_law_fits` on the same ESDs);
3. `spectral_stats` against `stats.matrix_stats` (one SVD each) on the default zoo's weight
   matrices and on a 1000×1000 and a 784×1000 matrix;
4. the statistics job's budget: `jobs.stats_job` on each default-zoo architecture's weights
   file against the spectral columns of every weight matrix in that file.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import bench_stats
import common
import numpy as np
import pyarrow.parquet as pq
import torch
import yaml
from threadpoolctl import threadpool_limits

from weightzoo import config, data, jobs, spectral, stats, training
from weightzoo.models import build_model, tensor_kinds

WW_VERSION = "0.7.7"
MIN_EVALS = 50  # fits with fewer eigenvalues are flagged; WeightWatcher's README says the same
NULL_DRAWS = 3  # the default
BUDGET = 0.30  # the issue: the weight_stats job may grow by at most 30 %
PLANTED_ALPHA = 2.5
TRAINED = ("mlp-d2-w64", "cnn-b3-c16")  # the default zoo's models with matrices >= 50 evals
MNIST, CIFAR = (1, 28, 28), (3, 32, 32)
VIT_64 = dict(patch=4, depth=2, heads=4, embed=64, mlp_ratio=2.0, activation="gelu", pool="cls")
WIDER = (  # initialised: more and larger matrices of each family (label, family, arch, input)
    ("mlp-d2-w256", "mlp", {"depth": 2, "width": 256, "activation": "relu"}, MNIST),
    ("cnn-b2-c32", "cnn", {"blocks": 2, "channels": 32, "activation": "relu"}, CIFAR),
    ("vit-d2-h4-e64-p4", "vit", VIT_64, CIFAR),
)
PAPER_MLP = {"depth": 2, "width": 1000, "activation": "relu"}  # 784-1000-1000-10
AGREE = (("alpha", "alpha"), ("alpha_weighted", "alpha_weighted"), ("ks_d", "D"))
NORMS = ("log_norm", "log_spectral_norm", "log_alpha_norm")


@dataclass
class Model:
    """One model to analyse and how its weights came about."""

    label: str
    model: torch.nn.Module
    how: str


def _planted(width: int, in_shape: tuple[int, int, int], seed: int = 0) -> Model:
    """A one-hidden-layer MLP whose first matrix has a planted Pareto tail of PLANTED_ALPHA.

    hidden.0 = U diag(√λ) Vᵀ: a quarter of its eigenvalues uniform in [0.05, 0.5], the rest a
    Pareto sample from xmin = 1, U and V random orthonormal; the head stays initialised.
    """
    torch.manual_seed(seed)
    model = build_model(
        "mlp", {"depth": 1, "width": width, "activation": "relu"}, in_shape, data.N_CLASSES
    ).eval()
    layer = model.hidden[0]
    rng = np.random.default_rng(seed)
    n_tail = 3 * width // 4
    tail = (1 - rng.random(n_tail)) ** (-1 / (PLANTED_ALPHA - 1))
    lam = np.concatenate([rng.uniform(0.05, 0.5, width - n_tail), tail])
    u = np.linalg.qr(rng.standard_normal((width, width)))[0]
    v = np.linalg.qr(rng.standard_normal((layer.in_features, width)))[0]
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy((u * np.sqrt(lam)) @ v.T))
    return Model(
        f"mlp-d1-w{width} planted",
        model,
        f"hidden.0 with a planted α = {PLANTED_ALPHA} tail, the rest initialised",
    )


def _initialised(family: str, arch: dict, in_shape: tuple[int, int, int], label: str) -> Model:
    torch.manual_seed(0)
    model = build_model(family, arch, in_shape, data.N_CLASSES).eval()
    return Model(label, model, f"initialised, input {in_shape}")


def _models(opts: common.Options, cfg: dict) -> list[Model]:
    """Default-zoo models trained briefly, a planted tail, and in full mode wider models."""
    archs = config.all_architectures(cfg)
    tensors = training.to_tensors(data.prepare_digits(), torch.device("cpu"))
    epochs = 1 if opts.quick else 5
    models = []
    for name in TRAINED:
        case = bench_stats._trained_case(archs[name], cfg, tensors, epochs)
        models.append(Model(case.label, case.model, case.how))
    if opts.quick:
        return [*models, _planted(64, tensors.in_shape)]
    models += [_initialised(family, arch, shape, label) for label, family, arch, shape in WIDER]
    models += [_planted(256, MNIST), _initialised("mlp", PAPER_MLP, MNIST, "mlp-784-1000-1000-10")]
    return models


def _weightwatcher(ww, model: torch.nn.Module):
    """WeightWatcher's analysis with its own fitter; its progress prints are swallowed."""
    with contextlib.redirect_stdout(io.StringIO()):
        return ww.WeightWatcher(model=model).analyze(min_evals=MIN_EVALS, pl_package="ww")


def _matrices(model: torch.nn.Module, names: list[str]) -> list[np.ndarray]:
    state = model.state_dict()
    return [state[f"{n}.weight"].detach().numpy() for n in names]


def _ours(model: torch.nn.Module, names: list[str], null_draws: int) -> dict[str, np.ndarray]:
    """weightzoo's spectral columns of the matrices WeightWatcher fitted, from the model."""
    ws = _matrices(model, names)
    return spectral.spectral_table(
        ws,
        seeds=list(range(len(ws))),
        min_evals=MIN_EVALS,
        null_draws=null_draws,
        pool_kernel_positions=True,
    )


def _per_matrix(fn: Callable[[], object], n: int, repeats: int, min_s: float) -> common.Timing:
    """Seconds per matrix of fn (n matrices a call): `repeats` means of back-to-back calls
    lasting >= min_s (one call if slower). A first, untimed call warms up and sizes the batch.
    """
    t0 = time.perf_counter()
    fn()
    calls = max(1, math.ceil(min_s / max(time.perf_counter() - t0, 1e-9)))
    t = common.timed(lambda: [fn() for _ in range(calls)], repeats, warmup=0)
    return common.Timing([v / (calls * n) for v in t.values])


def _ms(t: common.Timing) -> str:
    return t.fmt("ms", 1e3, 3 if t.median < 1e-3 else 2 if t.median < 0.1 else 1)


def _agreement(m: Model, df, ours: dict[str, np.ndarray]) -> list[object]:
    """A table row: the largest differences between ours and WeightWatcher's columns."""
    diffs = [np.max(np.abs(ours[a] - df[b].to_numpy(float))) for a, b in AGREE]
    norms = max(np.max(np.abs(ours[c] - df[c].to_numpy(float))) for c in NORMS)
    same = np.sum(
        (ours["xmin"] == df["xmin"].to_numpy(float))
        & (ours["n_tail"] == df["num_pl_spikes"].to_numpy(float))
    )
    dropped = int(np.sum(df["num_evals"].to_numpy(float) - ours["num_evals"]))
    status = ", ".join(
        f"{np.sum(ours['fit_status'] == s)} {s}"
        for s in spectral.STATUSES
        if np.any(ours["fit_status"] == s)
    )
    return [
        f"`{m.label}`",
        m.how,
        len(df),
        *(f"{d:.1e}" for d in diffs),
        f"{norms:.1e}",
        f"{same} of {len(df)}",
        dropped,
        status,
    ]


def _fit_only(ww_fit, esds: list[np.ndarray]) -> None:
    for e in esds:
        ww_fit(e[e > spectral.EVALS_THRESH])


def _model_rows(ww, ww_fit, m: Model, repeats: int, min_s: float) -> tuple[list, list] | None:
    """The agreement and timing rows of one model; None if WeightWatcher fits no matrix."""
    df = _weightwatcher(ww, m.model)
    if len(df) == 0:
        return None
    names = list(df["longname"])
    esds = [spectral.esd(w, pool_kernel_positions=True) for w in _matrices(m.model, names)]

    def per_matrix(fn: Callable[[], object]) -> common.Timing:
        return _per_matrix(fn, len(names), repeats, min_s)

    t_ww = per_matrix(lambda: _weightwatcher(ww, m.model))
    t_bare = per_matrix(lambda: _ours(m.model, names, 0))
    t_null = per_matrix(lambda: _ours(m.model, names, NULL_DRAWS))
    t_ww_fit = per_matrix(lambda: _fit_only(ww_fit, esds))
    t_fit = per_matrix(lambda: spectral.power_law_fits(esds, MIN_EVALS))
    timing = [f"`{m.label}`", len(names), _ms(t_ww), _ms(t_bare), common.ratio(t_ww, t_bare)]
    timing += [_ms(t_null), common.ratio(t_ww, t_null)]
    timing += [_ms(t_ww_fit), _ms(t_fit), common.ratio(t_ww_fit, t_fit)]
    return _agreement(m, df, _ours(m.model, names, 0)), timing


def _cost_sets(opts: common.Options, cfg: dict) -> list[tuple[str, list[np.ndarray]]]:
    """Matrix sets for table 3: the default zoo's weight matrices, then two large matrices."""
    archs = list(config.all_architectures(cfg).values())
    if opts.quick:
        archs = [a for a in archs if a.id in bench_stats.SMALL]
    zoo = []
    for arch in archs:
        model = _initialised(arch.family, arch.params, (1, 8, 8), arch.id).model
        kinds = tensor_kinds(model)
        zoo += [
            v.numpy()
            for k, v in model.state_dict().items()
            if kinds[k][0] == "weight" and v.ndim >= 2
        ]
    rng = np.random.default_rng(0)
    sizes = ((100, 100), (100, 78)) if opts.quick else ((1000, 1000), (1000, 784))
    large = [(f"{r}×{c}", [rng.standard_normal((r, c)).astype(np.float32)]) for r, c in sizes]
    label = f"default zoo: every weight matrix of {len(archs)} architectures (one dump)"
    return [(label, zoo), *large]


def _cost_row(label: str, ws: list[np.ndarray], repeats: int, min_s: float) -> list[object]:
    """A table-3 row: matrix_stats against the spectral columns, per matrix, on ws."""
    seeds = list(range(len(ws)))

    def per_matrix(fn: Callable[[], object]) -> common.Timing:
        return _per_matrix(fn, len(ws), repeats, min_s)

    ref = per_matrix(lambda: [stats.matrix_stats(w) for w in ws])
    each = per_matrix(
        lambda: [
            spectral.spectral_stats(w, null_draws=NULL_DRAWS, seed=s) for s, w in enumerate(ws)
        ]
    )
    batched = per_matrix(lambda: spectral.spectral_table(ws, seeds, null_draws=NULL_DRAWS))
    bare = per_matrix(lambda: spectral.spectral_table(ws, seeds, null_draws=0))
    cells = [[_ms(t), common.ratio(t, ref)] for t in (each, batched, bare)]
    return [label, len(ws), _ms(ref), *itertools.chain.from_iterable(cells)]


def _file_matrices(path: Path) -> list[np.ndarray]:
    """Every weight matrix (kind weight, ndim >= 2) of every dump in a weights file."""
    t = pq.read_table(path, columns=["kind", "shape", "values"])
    return [
        np.asarray(values.values).reshape(shape)
        for kind, shape, values in zip(
            t["kind"].to_pylist(), t["shape"].to_pylist(), t["values"], strict=True
        )
        if kind == "weight" and len(shape) >= 2
    ]


@dataclass
class Budget:
    """One architecture's statistics job against its spectral columns, seconds per job."""

    family: str
    job: common.Timing
    spectral: dict[str, common.Timing]  # by variant label


VARIANTS = {  # label: spectral_table keywords
    f"{NULL_DRAWS} nulls, every matrix": {"null_draws": NULL_DRAWS},
    f"{NULL_DRAWS} nulls where ≥ {MIN_EVALS} eigenvalues": {
        "null_draws": NULL_DRAWS,
        "null_min_evals": MIN_EVALS,
    },
    "no nulls": {"null_draws": 0},
}


def _budget(opts: common.Options, cfg: dict, repeats: int) -> tuple[list[Budget], int, int]:
    """Table 4: every default-zoo architecture (quick: three) as its statistics job runs it.

    Its weights file is written like a training job's (bench_stats), with initialised
    weights: the cost depends on the shapes. The job is `jobs.stats_job` in-process (read,
    statistics, strength maps, both writes); the spectral side gets the file's matrices,
    read beforehand, as the job would hand them over.
    """
    archs = list(config.all_architectures(cfg).values())
    if opts.quick:
        archs = [a for a in archs if a.id in bench_stats.SMALL]
    seeds = next(iter(config.seed_blocks(cfg).values()))
    hist = cfg["analysis"]["hist"]
    out, dumps, work = [], 0, opts.workdir / "spectral"
    for arch in archs:
        m = _initialised(arch.family, arch.params, (1, 8, 8), arch.id).model
        init = {k: v.detach().clone() for k, v in m.state_dict().items()}
        case = bench_stats.Case(arch.id, arch.family, m, (1, 8, 8), init, 1, "initialised")
        epochs = config.training_params(cfg, arch.family)["dump_epochs"]
        path = work / f"{arch.id}.parquet"
        bench_stats._write_weights_file(case, path, seeds, epochs)
        dumps = len(seeds) * len(epochs)
        ws = _file_matrices(path)
        job = {
            "weights_path": path,
            "family": arch.family,
            "in_shape": [1, 8, 8],
            "hist": hist,
            "spectral": None,  # the job without the fits: the reference of the budget
            "stats_out": work / f"{arch.id}.stats.parquet",
            "maps_out": work / f"{arch.id}.maps.parquet",
        }
        t_job = common.timed(lambda j=job: jobs.stats_job(**j), repeats)

        def columns(kw: dict, ws: list[np.ndarray] = ws) -> None:
            spectral.spectral_table(ws, seeds=list(range(len(ws))), min_evals=MIN_EVALS, **kw)

        spec = {
            label: common.timed(lambda kw=kw: columns(kw), repeats)
            for label, kw in VARIANTS.items()
        }
        out.append(Budget(arch.family, t_job, spec))
        for f in (path, job["stats_out"], job["maps_out"]):
            f.unlink(missing_ok=True)
    return out, len(archs), dumps


def _budget_rows(budgets: list[Budget]) -> tuple[list[list[object]], dict[str, float]]:
    """Per family and in all: summed job time and each variant's share of it."""
    rows, total = [], {}
    for family in [*sorted({b.family for b in budgets}), "all"]:
        part = [b for b in budgets if family in ("all", b.family)]
        job = sum(b.job.median for b in part)
        shares = {v: sum(b.spectral[v].median for b in part) / job for v in VARIANTS}
        rows.append(
            [
                family if family != "all" else "**all**",
                len(part),
                f"{job:.2f} s",
                *(f"+{100 * s:.0f} %" for s in shares.values()),
            ]
        )
        total = shares
    return rows, total


def section_spectral(opts: common.Options) -> str:
    """Markdown section (g): weightzoo's power-law fits vs WeightWatcher's, and their cost."""
    head = "## (g) Heavy-tailed spectra vs WeightWatcher"
    logging.getLogger("weightwatcher").setLevel(logging.ERROR)  # it warns: no CUDA, no torch SVD
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            import weightwatcher as ww
            from weightwatcher.WW_powerlaw import WWFit as ww_fit
    except ImportError:
        return (
            f"{head}\n\nSkipped: WeightWatcher is not installed "
            f"(`pip install weightwatcher=={WW_VERSION}`)."
        )
    cfg = yaml.safe_load((common.ROOT / "config" / "config.yaml").read_text())
    repeats = min(opts.repeats, 3) if opts.quick else opts.repeats
    min_s = 0.02 if opts.quick else 0.2

    torch.set_num_threads(opts.threads)
    agree, timing = [], []
    with threadpool_limits(opts.threads):  # numpy's and scipy's BLAS/LAPACK, both sides
        for m in _models(opts, cfg):
            rows = _model_rows(ww, ww_fit, m, repeats, min_s)
            if rows:
                agree.append(rows[0])
                timing.append(rows[1])
        cost = [_cost_row(label, ws, repeats, min_s) for label, ws in _cost_sets(opts, cfg)]
        budgets, n_archs, n_dumps = _budget(opts, cfg, repeats)
    budget_rows, shares = _budget_rows(budgets)
    return "\n\n".join(
        [
            head,
            _method(opts, ww.__version__, min_s, repeats),
            "**Agreement** on the matrices WeightWatcher fits (≥ 50 eigenvalues), largest |Δ| "
            "over them; *xmin, n_tail equal*: matrices where both picked the same xmin and tail; "
            "*dropped*: eigenvalues ≤ 1e-5, which WeightWatcher counts in its num_evals and ours "
            "does not (neither fits them); *ours*: weightzoo's fit_status of those matrices.",
            common.table(
                [
                    "model",
                    "weights",
                    "matrices",
                    "alpha",
                    "alpha_weighted",
                    "D",
                    "log norms",
                    "xmin, n_tail equal",
                    "dropped",
                    "ours",
                ],
                agree,
            ),
            "**Time per matrix**, median (min–max); ratio = WeightWatcher's ÷ weightzoo's (above "
            "1: weightzoo is faster). *Same outputs*: `spectral_table(null_draws=0)`, an SVD, the "
            f"fit and the norms per matrix; *with {NULL_DRAWS} nulls*: what the statistics job "
            f"would compute, {NULL_DRAWS} more eigendecompositions per matrix; *fit only*: "
            "`WWFit` (a Python loop over xmin candidates) against `power_law_fits` (one array "
            "expression) on the same ESDs.",
            common.table(
                [
                    "model",
                    "matrices",
                    "WeightWatcher analyze()",
                    "weightzoo, same outputs",
                    "ratio",
                    f"weightzoo, with {NULL_DRAWS} nulls",
                    "ratio",
                    "fit only: WWFit",
                    "fit only: weightzoo",
                    "ratio",
                ],
                timing,
            ),
            "**Against `stats.matrix_stats`** (σ_max and stable rank: one SVD, or Lanczos from "
            f"a smaller side of {stats.LANCZOS_MIN_DIM}), per matrix, conv kernels as "
            "(out, in·kh·kw); "
            f"ratio = spectral ÷ matrix_stats (the spectral side's cost in units of matrix_stats). "
            f"*Each*: `spectral_stats` per matrix with {NULL_DRAWS} nulls; *batched*: one "
            "`spectral_table` call for the whole set (same-shape matrices share a stacked SVD).",
            common.table(
                [
                    "matrices",
                    "n",
                    "matrix_stats",
                    f"spectral_stats, {NULL_DRAWS} nulls",
                    "ratio",
                    f"spectral_table, {NULL_DRAWS} nulls",
                    "ratio",
                    "spectral_table, no nulls",
                    "ratio",
                ],
                cost,
            ),
            f"**The statistics job's budget** (the issue: at most +{100 * BUDGET:.0f} %): "
            f"{n_archs} default-zoo architectures, each a weights file of {n_dumps} dumps as one "
            "training job writes it (initialised weights, each dump with its own noise: the cost "
            "depends on the shapes). *Job*: `jobs.stats_job` in-process, summed over the "
            "architectures (reading, statistics, strength maps, writing; without the interpreter's "
            "start-up and imports, which a Snakemake job adds); the other columns: one "
            "`spectral_table` call for every weight matrix of the file, as a share of the job.",
            common.table(["family", "architectures", "job", *VARIANTS], budget_rows),
            _verdict(shares),
        ]
    )


def _method(opts: common.Options, version: str, min_s: float, repeats: int) -> str:
    return (
        f"WeightWatcher {version}: `WeightWatcher(model=m).analyze(min_evals={MIN_EVALS}, "
        'pl_package="ww")`, its own power-law fitter (`WWFit`: eigenvalues ≤ 1e-5 dropped, '
        "every other eigenvalue but the largest an xmin candidate, continuous MLE α, the "
        "smallest KS distance D wins), conv kernels as its kh·kw position matrices × √½, "
        "pooled. weightzoo: `spectral.spectral_table(matrices, pool_kernel_positions=True)` "
        "on the same matrices from `model.state_dict()`. The default zoo's largest MLP and "
        "CNN are trained briefly on digits (`training.fit`, seed 0); the others are "
        "initialised, and `planted` has a Pareto tail of α = "
        f"{PLANTED_ALPHA} in its first matrix. Both sides in one process with "
        f"`torch.set_num_threads({opts.threads})` and BLAS/LAPACK limited to {opts.threads} "
        f"thread(s) (threadpoolctl). Times: median of {repeats} value(s), each the mean of "
        f"back-to-back calls lasting ≥ {min_s:g} s (one call if slower), per matrix."
    )


def _verdict(shares: dict[str, float]) -> str:
    parts = [
        f"{label}: +{100 * s:.0f} % ({'within' if s <= BUDGET else 'over'} the budget)"
        for label, s in shares.items()
    ]
    return (
        "**Budget**, all architectures together, in-process: " + "; ".join(parts) + ". "
        "A Snakemake job also starts an interpreter and imports the library, which the "
        "in-process figure leaves out, so the job's wall time grows by less."
    )
