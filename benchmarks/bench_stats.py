"""(d) Weight statistics vs WeightWatcher, per model, side by side in one process.

Reference: `WeightWatcher(model=m).analyze()` with its default settings. weightzoo is timed
three ways on the same model, with the same torch and BLAS threads, the sides taking turns:

(i)   same outputs as WeightWatcher: `stats.matrix_stats` of every weight tensor (spectral
      norm and stable rank), of w only: the like-for-like comparison for the issue's target;
(ii)  everything, one dump: `dumps.state_dict_table` then `stats.dump_stats(rows, w0_rows)`
      (w and w - w0, every tensor and both pools, histograms, quantiles, strengths);
(iii) everything as the statistics job runs it: `stats.file_stats` on a weights file holding
      the model's dumps for one training job's seeds x dump epochs, per dump (model state).

cProfile of each gives the parts the time goes to, by the function names of `stats`.
"""

from __future__ import annotations

import contextlib
import cProfile
import io
import logging
import math
import pstats
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import common
import numpy as np
import pyarrow as pa
import torch
import yaml
from threadpoolctl import threadpool_limits

from weightzoo import config, data, dumps, families, stats, training
from weightzoo.models import build_model, count_params, tensor_kinds

WW_VERSION = "0.7.7"
TARGET = 10.0  # the target: weightzoo >= 10x faster per model than WeightWatcher
SMALL = ("mlp-d2-w64", "cnn-b3-c16", "vit-d1-h8-e32-p2")  # from config/config.yaml
PAPER_MLP = {"depth": 2, "width": 1000, "activation": "relu"}  # 784-1000-1000-10
PAPER_LABEL = "mlp-784-1000-1000-10"
PAPER_TARGET = 1.0  # its statistics, everything for one dump, at least as fast as WeightWatcher
MNIST_SHAPE = (1, 28, 28)
PERTURB = 0.1  # the paper MLP's stand-in "trained" weights: w0 + PERTURB * std(w0) * noise
DUMP_NOISE = 0.01  # each dump of the weights file of (iii): its base + DUMP_NOISE * std * noise

# The three weightzoo figures, by key: (short label, what it is).
MEASURES = {
    "same": ("(i) same outputs as WW", "σ_max and stable rank of every weight matrix, w only"),
    "dump": ("(ii) everything, one dump", "`state_dict_table` + `dump_stats(rows, w0_rows)`"),
    "file": ("(iii) everything, statistics job", "`file_stats` of the weights file, per dump"),
}
TIMING_HEADERS = [
    "model",
    "params",
    "WeightWatcher analyze()",
    "(i) same outputs as WW",
    "speed-up (i)",
    "(ii) everything, one dump",
    "speed-up (ii)",
    "(iii) everything as the statistics job, per dump",
    "speed-up (iii)",
]
COVERAGE_HEADERS = [
    "model",
    "weights",
    "tensors",
    "(i)",
    "(ii)",
    "(iii)",
    "WeightWatcher",
    "weight matrices WW skipped",
]
AGREEMENT_HEADERS = [
    "model",
    "dense layers",
    "of which Lanczos",
    "σ_max vs √(WW spectral_norm)",
    "stable rank vs WW",
    "conv layers",
]
AGREEMENT_TEXT = (
    "Agreement on the layers both cover (largest relative difference; ours from (ii)'s "
    "w rows). WW's `spectral_norm` is the largest eigenvalue of WᵀW, i.e. σ_max², so ours "
    "(σ_max) is compared with its square root; both define stable rank as ‖W‖_F² / σ_max². "
    "'Of which Lanczos': dense layers whose smaller side is ≥ `stats.LANCZOS_MIN_DIM` "
    f"({stats.LANCZOS_MIN_DIM}), where our σ_max comes from ARPACK `eigsh` (the largest "
    "eigenvalue of the Gram matrix WᵀW or WWᵀ only) while WW's comes from its full SVD. For a conv kernel WW takes the "
    "kh·kw slices W[:, :, i, j] as separate matrices, scaled by 1/√2, and pools their "
    "eigenvalues, whereas we take W reshaped to (out, in·kh·kw): other matrices, so conv "
    "layers are checked against WW's definition recomputed from the weights, and the ratio "
    "of the two stable ranks is shown."
)


@dataclass
class Case:
    """One model to analyze: its dumped weights in `model`, its initial weights as w0."""

    label: str
    family: str
    model: torch.nn.Module
    in_shape: tuple[int, int, int]
    init_state: dict[str, torch.Tensor]
    epoch: int  # the epoch `model` stands for
    how: str  # how the weights came about, for the table
    kinds: dict[str, tuple[str, str]] = field(init=False)
    weights: list[str] = field(init=False)  # the weight matrices (kind "weight"), by name
    init: pa.Table = field(init=False)  # the epoch-0 rows, w0 of `dump_stats`

    def __post_init__(self) -> None:
        self.kinds = tensor_kinds(self.model)
        self.weights = [k for k, (kind, _) in self.kinds.items() if kind == "weight"]
        self.init = self.rows(self.init_state, 0)

    def rows(self, state: dict[str, torch.Tensor], epoch: int, seed: int = 0) -> pa.Table:
        """The weight rows of one dump of this model, as the training job writes them."""
        return dumps.state_dict_table(
            state,
            self.kinds,
            dataset="bench",
            family=self.family,
            arch=self.label,
            seed=seed,
            epoch=epoch,
        )

    def lanczos(self) -> list[str]:
        """The weight matrices whose spectral norm `stats.matrix_stats` takes from ARPACK."""
        state = self.model.state_dict()
        return [
            k
            for k in self.weights
            if state[k].ndim >= 2
            and min(state[k].shape[0], state[k][0].numel()) >= stats.LANCZOS_MIN_DIM
        ]


def _trained_case(arch: config.Arch, cfg: dict, tensors: training.TensorData, epochs: int) -> Case:
    """Train seed 0 of `arch` on digits for `epochs` epochs with the family's settings."""
    train = {**cfg["families"][arch.family]["train"], "epochs": epochs}
    states: dict[int, dict[str, torch.Tensor]] = {}

    def on_dump(epoch: int, by_seed: dict[int, dict[str, torch.Tensor]]) -> None:
        states[epoch] = {k: v.detach().clone() for k, v in by_seed[0].items()}  # views: copy

    block = training.Block(
        families.parse(arch.family, arch.params),
        training.Recipe.from_config(train),
        seeds=(0,),
        dump_epochs=(epochs,),
        divergence=training.DivergenceRule.from_config(cfg["divergence"]),
    )
    models = training.seed_models(block, tensors.in_shape, tensors.n_classes, tensors.device, False)
    (result,) = training.fit(models, tensors, block, training.Callbacks(on_dump=on_dump))
    model = build_model(arch.family, arch.params, tensors.in_shape, tensors.n_classes)
    model.load_state_dict(states[epochs])
    how = f"trained {epochs} epoch{'s' * (epochs > 1)} on digits"
    how += f", test acc {result.final_test_acc:.2f}"
    return Case(arch.id, arch.family, model.eval(), tensors.in_shape, states[0], epochs, how)


def _paper_mlp_case() -> Case:
    """The paper's MNIST MLP shape, 784-1000-1000-10, initialised (no MNIST offline).

    Its "trained" weights are w0 plus Gaussian noise of PERTURB x each tensor's std, so that
    w - w0 is a full-rank matrix as in a real dump; the cost depends on shapes, not values.
    """
    torch.manual_seed(0)
    model = build_model("mlp", PAPER_MLP, MNIST_SHAPE, data.N_CLASSES).eval()
    init = {k: v.detach().clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(PERTURB * p.std() * torch.randn_like(p))
    return Case(
        PAPER_LABEL,
        "mlp",
        model,
        MNIST_SHAPE,
        init,
        1,
        f"initialised, + {PERTURB:g}·std noise as the dump",
    )


def _same_outputs(case: Case) -> list[dict]:
    """(i): what WeightWatcher's comparable columns hold, the spectral norm and stable rank of
    every weight matrix of the model (`stats.matrix_stats`), of w only, from the model."""
    state = case.model.state_dict()
    return [stats.matrix_stats(state[k].detach().numpy()) for k in case.weights]


def _one_dump(case: Case, hist: stats.HistConfig) -> list[dict]:
    """(ii): everything the statistics job computes for one dump of `case`, from the model:
    its rows, then `stats.dump_stats` with the epoch-0 rows (built once, untimed) as w0."""
    rows = case.rows(case.model.state_dict(), case.epoch)
    return stats.dump_stats(rows, case.init, hist)


def _write_weights_file(case: Case, path: Path, seeds: list[int], epochs: list[int]) -> None:
    """(iii)'s input: the model's dumps as a training job writes them, seed by seed, epochs
    in order, a row group per dump (`dumps.DumpWriter`). A dump's base is the initial weights
    at epoch 0 (so w - w0 is measured from it) and the model's weights at later epochs, plus
    its own Gaussian noise of DUMP_NOISE x each tensor's std, so that no two dumps are equal."""
    trained = case.model.state_dict()
    gen = torch.Generator().manual_seed(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    with dumps.DumpWriter(path) as writer:
        for seed in seeds:
            for epoch in epochs:
                base = case.init_state if epoch == 0 else trained
                state = {
                    k: v
                    + DUMP_NOISE
                    * v.std(correction=0)
                    * torch.randn(v.shape, generator=gen, dtype=v.dtype)
                    for k, v in base.items()
                }
                writer.write(case.rows(state, epoch, seed))


def _weightwatcher(ww, model: torch.nn.Module):
    """WeightWatcher's default analysis; its progress prints to stdout are swallowed."""
    with contextlib.redirect_stdout(io.StringIO()):
        return ww.WeightWatcher(model=model).analyze()


@dataclass
class Measured:
    """One function's figures: seconds per call, its profile, and its output."""

    timing: common.Timing
    profile: pstats.Stats
    runs: int  # calls in `profile`
    output: object


def _profiled(fn: Callable[[], object], calls: int) -> tuple[pstats.Stats, float, object]:
    """cProfile of `calls` back-to-back calls: the stats, wall seconds per call, the output."""
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    for _ in range(calls):
        out = fn()
    prof.disable()
    return pstats.Stats(prof), (time.perf_counter() - t0) / calls, out


def _measure(
    fns: dict[str, Callable[[], object]], repeats: int, min_s: float, warm: bool
) -> dict[str, Measured]:
    """Seconds per call of each fn, `repeats` values each, the fns taking turns so that the
    paired values of `common.ratio` were taken under the same load; and a profile of each.

    Each value is the mean of enough back-to-back calls to last `min_s`. Per fn first one
    profiled call (after an unprofiled warm-up unless `warm`: the process has run every fn on
    an earlier model). If it lasted `min_s` or more, a value is one call and that profile is
    kept (a slow fn is not run once more just to profile it); otherwise one unprofiled call
    calibrates the number of calls per value and that many calls are profiled.
    """
    loops, profiles, outputs = {}, {}, {}
    for name, fn in fns.items():
        if not warm:
            fn()
        st, dt, outputs[name] = _profiled(fn, 1)
        loops[name] = 1
        if dt < min_s:
            t0 = time.perf_counter()
            fn()
            loops[name] = max(1, math.ceil(min_s / max(time.perf_counter() - t0, 1e-6)))
            st = _profiled(fn, loops[name])[0]
        profiles[name] = st
    values: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            for _ in range(loops[name]):
                fn()
            values[name].append((time.perf_counter() - t0) / loops[name])
    return {
        name: Measured(common.Timing(values[name]), profiles[name], loops[name], outputs[name])
        for name in fns
    }


def _cumtime(st: pstats.Stats, path_end: str, name: str) -> float:
    """Cumulative seconds of function `name` defined in a file ending with `path_end`."""
    return sum(v[3] for (f, _, n), v in st.stats.items() if n == name and f.endswith(path_end))


def _ncalls(st: pstats.Stats, path_end: str, name: str) -> int:
    """Calls of function `name` defined in a file ending with `path_end`."""
    return sum(v[1] for (f, _, n), v in st.stats.items() if n == name and f.endswith(path_end))


def _top(st: pstats.Stats, runs: int, n: int = 8) -> list[str]:
    """The n entries with the most own time: own and cumulative ms and calls per run."""
    entries = sorted(st.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:n]
    out = []
    for (file, line, name), (_, calls, own, cum, _) in entries:
        where = "/".join(file.split("/")[-2:]) if file != "~" else "builtin"
        out.append(
            f"{own / runs * 1e3:8.1f} ms own, {cum / runs * 1e3:8.1f} ms cum, "
            f"{calls / runs:7.1f} calls  {name} ({where}:{line})"
        )
    return out


STATS_PY, DUMPS_PY = "weightzoo/stats.py", "weightzoo/dumps.py"
PERCENTILE = ("weightzoo/stats.py", "percentiles")
SVDS = ("scipy/sparse/linalg/_eigen/arpack/arpack.py", "eigsh")
LAPACK_SVD = ("numpy/linalg/_linalg.py", "svd")
# The parts of a weightzoo profile, exclusive of each other, in table order: column header
# and what it holds (see `Profile.of`).
PARTS = {
    "spectral": (
        "σ_max, stable rank",
        "`matrix_stats` (a LAPACK SVD, or ARPACK `eigsh` of the Gram matrix "
        "from a smaller side of LANCZOS_MIN_DIM; with the part in `eigsh`)",
    ),
    "quantiles": ("quantiles", "`stats.percentiles`: a radix select per segment"),
    "hist": ("histograms", "`_segment_counts`: bin indices and one bincount"),
    "moments": (
        "rest of segment_stats",
        "`segment_stats` less the two before: moments, extremes and norms by `ufunc.reduceat`",
    ),
    "strengths": ("node strengths", "`node_strength` + `strength_summary`"),
    "scopes": ("scopes", "`_dump_segments`: flattening the rows, w − w0, the two pools"),
    "frame": (
        "rest of _dumps_frame",
        "`_dumps_frame` less the parts nested in it: "
        "concatenation into float64 chunks, the polars frame",
    ),
    "input": (
        "input",
        "(ii) `dumps.state_dict_table` from the model; (iii) reading the row "
        "groups (`_row_group_batches`) and splitting them into dumps (`_dumps`)",
    ),
    "wrapper": (
        "wrapper",
        "(ii) `dump_stats` less `_dumps_frame`: the frame to row dicts; "
        "(iii) `stats_table` less the above: batching, `pl.concat`",
    ),
    "other": (
        "other",
        "the profiled total less all the above: e.g. `state_dict()`, opening "
        "the file, cProfile's own overhead",
    ),
}


@dataclass
class Profile:
    """Profiled seconds per call ((iii): per dump) of one weightzoo figure, by part."""

    total: float
    parts: dict[str, float]
    lanczos: float  # of which in ARPACK `eigsh`
    lapack: float  # of which in numpy's (LAPACK) svd
    lapack_calls: float  # numpy svd calls per call ((iii): per file)
    batches: float  # `_dumps_frame` calls per call ((iii): per file)

    @classmethod
    def of(cls, st: pstats.Stats, runs: int, per: int = 1) -> Profile:
        """From `runs` profiled calls, each of `per` dumps."""

        def cum(path_end: str, name: str) -> float:
            return _cumtime(st, path_end, name) / (runs * per)

        total = st.total_tt / (runs * per)
        seg, frame = cum(STATS_PY, "_segment_raw"), cum(STATS_PY, "_dumps_frame")
        reading = cum(STATS_PY, "_row_group_batches") + cum(STATS_PY, "_dumps")
        p = {
            "spectral": cum(STATS_PY, "matrix_stats"),
            "quantiles": cum(*PERCENTILE),
            "hist": cum(STATS_PY, "_segment_counts"),
        }
        p["moments"] = seg - p["quantiles"] - p["hist"]
        p["strengths"] = cum(STATS_PY, "node_strength") + cum(STATS_PY, "strength_summary")
        p["scopes"] = cum(STATS_PY, "_dump_segments")
        p["frame"] = frame - seg - p["scopes"] - p["spectral"] - p["strengths"] if frame else 0.0
        p["input"] = cum(DUMPS_PY, "state_dict_table") + reading
        p["wrapper"] = cum(STATS_PY, "dump_stats") + cum(STATS_PY, "stats_table") - frame - reading
        p["other"] = total - sum(p.values())
        return cls(
            total,
            p,
            cum(*SVDS),
            cum(*LAPACK_SVD),
            _ncalls(st, *LAPACK_SVD) / runs,
            _ncalls(st, STATS_PY, "_dumps_frame") / runs,
        )

    def share(self, key: str) -> float:
        return self.parts[key] / self.total

    def cell(self, key: str) -> str:
        v = self.parts[key]
        if abs(v) < 5e-6:
            return "–"
        text = f"{_ms(v)} ({100 * self.share(key):.0f}%)"
        if key == "spectral" and self.lanczos:
            text += f"; Lanczos {_ms(self.lanczos)}"
        return text

    def top(self, n: int = 3) -> str:
        """The n largest parts, with their time and share."""
        keys = sorted((k for k in self.parts if k != "other"), key=self.parts.get, reverse=True)
        return ", ".join(
            f"{PARTS[k][0]} {_ms(self.parts[k])} ({100 * self.share(k):.0f}%)" for k in keys[:n]
        )


@dataclass
class WWProfile:
    """Profiled seconds per call of WeightWatcher's analyze(), by part."""

    total: float
    svd: float  # scipy.linalg.svd
    fit: float  # WeightWatcher.apply_powerlaw

    @classmethod
    def of(cls, st: pstats.Stats, runs: int) -> WWProfile:
        return cls(
            st.total_tt / runs,
            _cumtime(st, "scipy/linalg/_decomp_svd.py", "svd") / runs,
            _cumtime(st, "weightwatcher/weightwatcher.py", "apply_powerlaw") / runs,
        )

    def row(self) -> list[str]:
        def part(v: float) -> str:
            return f"{_ms(v)} ({100 * v / self.total:.0f}%)"

        return [
            _ms(self.total),
            part(self.svd),
            part(self.fit),
            part(self.total - self.svd - self.fit),
        ]


def _ms(seconds: float) -> str:
    ms = seconds * 1e3
    return f"{ms:.2f} ms" if abs(ms) < 10 else f"{ms:.1f} ms"


def _fmt(t: common.Timing) -> str:
    return t.fmt("ms", 1e3, 2 if t.median < 0.01 else 1)


@dataclass
class Result:
    """One model's figures."""

    case: Case
    seeds: list[int]  # of the weights file of (iii)
    epochs: list[int]
    ww: common.Timing
    times: dict[str, common.Timing]  # by MEASURES key; "file" per dump
    profiles: dict[str, Profile]  # by MEASURES key; "file" per dump
    ww_profile: WWProfile
    tops: dict[str, list[str]]  # top own-time entries, by MEASURES key
    records: list[dict]  # (ii)'s output
    file_rows: int  # (iii)'s output rows
    df: object  # WeightWatcher's output frame

    @property
    def label(self) -> str:
        return self.case.label

    @property
    def dumps(self) -> int:
        return len(self.seeds) * len(self.epochs)

    def speedup(self, key: str) -> float:
        return self.ww.median / self.times[key].median

    def ratio(self, key: str) -> str:
        mark = "✓" if self.speedup(key) >= TARGET else "✗"
        return f"{common.ratio(self.ww, self.times[key])} {mark}"


def _ww_conv_reference(w: np.ndarray) -> tuple[float, float]:
    """WeightWatcher's spectral norm and stable rank of a conv kernel (out, in, kh, kw).

    Pooling (its default), it takes the kh*kw slices W[:, :, i, j] as separate matrices,
    each scaled by sqrt(1/2) (conv2d_norm with its conv2d_count of 1), and pools their
    squared singular values: spectral norm = max / 2, stable rank = ||W||_F^2 / max.
    """
    rf = w.shape[2] * w.shape[3]
    slices = w.transpose(2, 3, 0, 1).reshape(rf, w.shape[0], w.shape[1])
    top = float(np.linalg.svd(slices, compute_uv=False).max()) ** 2
    return top / 2, float(np.sum(np.square(w))) / top


def _agreement(case: Case, records: list[dict], df) -> list[object]:
    """A table row: largest relative differences between our and WW's figures per layer kind.

    Dense layers: our sigma_max vs sqrt(WW spectral_norm) (WW's is the largest eigenvalue of
    W^T W, i.e. sigma_max^2), and the stable ranks (same definition). Conv layers: WW's
    figures are of other matrices (see `_ww_conv_reference`), so they are checked against
    that definition recomputed from the weights, with the range of our/WW stable rank.
    """
    ours = {r["scope"]: r for r in records if r["target"] == "w"}
    state = {k: v.detach().double().numpy() for k, v in case.model.state_dict().items()}
    lanczos = set(case.lanczos())
    sigma_diff, rank_diff, conv_diff, conv_ratio, dense_lanczos = [], [], [], [], 0
    for longname, spectral, stable in zip(
        df["longname"], df["spectral_norm"], df["stable_rank"], strict=True
    ):
        name = f"{longname}.weight"
        mine, w = ours[name], state[name]
        if w.ndim == 2:
            sigma_diff.append(abs(mine["spectral_norm"] / math.sqrt(spectral) - 1))
            rank_diff.append(abs(mine["stable_rank"] / stable - 1))
            dense_lanczos += name in lanczos
        else:
            ref_spectral, ref_stable = _ww_conv_reference(w)
            conv_diff += [abs(ref_spectral / spectral - 1), abs(ref_stable / stable - 1)]
            conv_ratio.append(mine["stable_rank"] / stable)
    conv = "none"
    if conv_ratio:
        conv = (
            f"{len(conv_ratio)}: vs WW's definition {max(conv_diff):.1e}; ours ÷ WW "
            f"stable rank {min(conv_ratio):.2f}–{max(conv_ratio):.2f}"
        )
    return [
        f"`{case.label}`",
        len(sigma_diff),
        dense_lanczos,
        f"{max(sigma_diff, default=math.nan):.1e}",
        f"{max(rank_diff, default=math.nan):.1e}",
        conv,
    ]


def _cases(opts: common.Options, cfg: dict) -> list[Case]:
    """The default config's small models trained briefly; full mode adds the paper MLP."""
    archs = config.all_architectures(cfg)
    tensors = training.to_tensors(data.prepare_digits(), torch.device("cpu"))
    epochs = 1 if opts.quick else 5
    names = SMALL[:2] if opts.quick else SMALL
    cases = [_trained_case(archs[n], cfg, tensors, epochs) for n in names]
    if not opts.quick:
        cases.append(_paper_mlp_case())
    return cases


def _method(
    opts: common.Options, hist: stats.HistConfig, version: str, min_s: float, results: list[Result]
) -> str:
    """The paragraph saying what was measured and how."""
    plans = sorted({f"{len(r.seeds)} seeds × {len(r.epochs)} epochs {r.epochs}" for r in results})
    return (
        "Per model, in one process on the same weights, with "
        f"`torch.set_num_threads({opts.threads})` and numpy's and scipy's BLAS/LAPACK limited to "
        f"{opts.threads} thread(s) (threadpoolctl) on both sides. **WeightWatcher** "
        f"{version}: `WeightWatcher(model=m).analyze()` with its defaults, already the cheap "
        "ones (plot=False, randomize=False, mp_fit=False, vectors=False, pool=True, "
        "min_evals=8; on a CPU its 'fast' SVD falls back to scipy's float64 SVD): for every "
        "Linear / Conv2d weight matrix a full SVD, a power-law fit of the eigenvalue "
        "spectrum (alpha), norms, spectral norm, stable rank and entropy; biases, LayerNorms, "
        "embeddings and matrices with fewer than 8 eigenvalues are skipped. **weightzoo**, "
        "three figures: **(i) same outputs as WeightWatcher**: the spectral norm and stable "
        "rank of every weight matrix of the model, of w only: `stats.matrix_stats` of each "
        "weight tensor taken from `model.state_dict()` (conv kernels as (out, in·kh·kw); a "
        "LAPACK SVD below a smaller side of `stats.LANCZOS_MIN_DIM` = "
        f"{stats.LANCZOS_MIN_DIM}, ARPACK's largest singular value from it), the like-for-like "
        "figure for the issue's target. **(ii) everything, one dump**: "
        "`dumps.state_dict_table(model.state_dict())` then `stats.dump_stats(rows, w0_rows, "
        f"hist=HistConfig(range={hist.range}, bins={hist.bins}, ...))` with the epoch-0 rows "
        "(built once, untimed) "
        "as w0: every tensor and the pools `all_weights` / `all_params`, for w and for w − w0, "
        "get moments, quantiles, norms and a histogram, every weight matrix its spectral norm, "
        "stable rank and node strengths. **(iii) everything, as the statistics job runs it**: "
        "`stats.file_stats(path)` on a weights file of the model written like a training "
        "job's (`dumps.DumpWriter`, a row group per dump, seed by seed, epochs in order; "
        f"{'; '.join(plans)}: one job's seeds and the family's dump epochs in "
        "config/config.yaml; epoch 0 is the initial weights, later epochs the model's, each "
        f"dump + {DUMP_NOISE:g}·std Gaussian noise of its own), including reading it, time ÷ "
        "dumps = per model state. Not timed: the job's first-layer strength maps "
        "(`file_strength_maps`) and writing its outputs. The small models are "
        "config/config.yaml architectures trained briefly with `training.fit` "
        "(seed 0, the family's optimiser settings)"
        + ("" if opts.quick else "; the last model has the paper's MNIST MLP shape")
        + ". Times are per model (per call; (iii) per dump), each value the mean of "
        f"back-to-back calls lasting ≥ {min_s:g} s (one call if slower), the four taking turns. "
        "Speed-up = WeightWatcher's time ÷ weightzoo's (above 1: weightzoo is faster), median "
        f"with the range over paired repeats; ✓ = median ≥ {TARGET:g}×."
    )


def _verdict(results: list[Result]) -> str:
    """Whether the target is met, per figure, and what bounds each model's figures."""
    lines = [
        f"**Target** (the issue: weightzoo ≥ {TARGET:g}× faster per model than "
        "WeightWatcher while also computing the spectral norm and stable rank):"
    ]
    for key, (label, what) in MEASURES.items():
        met = sum(r.speedup(key) >= TARGET for r in results)
        verdict = "met" if met == len(results) else "missed" if met == 0 else "partly met"
        lines.append(
            f"- {label} ({what}): **{verdict}** ({met} of {len(results)} models): "
            + ", ".join(f"{r.speedup(key):.1f}× (`{r.label}`)" for r in results)
            + "."
        )
    for r in (r for r in results if r.label == PAPER_LABEL):
        lines.append(
            f"- The paper's MNIST MLP (`{r.label}`), everything for one dump (ii) against "
            f"WeightWatcher's `analyze()`, target ≥ {PAPER_TARGET:g}×: "
            f"**{'met' if r.speedup('dump') >= PAPER_TARGET else 'missed'}** "
            f"({r.speedup('dump'):.2f}×; as the statistics job runs it, (iii): "
            f"{r.speedup('file'):.2f}×)."
        )
    lines.append(
        "\nWhat bounds each figure (times measured like the others; parts and shares from "
        "the profiles below, which include cProfile's overhead):"
    )
    for r in results:
        same, dump, file = (r.profiles[k] for k in MEASURES)
        wwp, k, lan = r.ww_profile, len(r.case.weights), len(r.case.lanczos())
        params = count_params(r.case.model)
        per_param = sum(rec["count"] for rec in r.records) / params
        svd_only = r.times["dump"].median * dump.share("spectral")
        lanczos = (
            f"{lan} of them by Lanczos, {100 * same.lanczos / same.total:.0f}% of the profile; "
            if lan
            else ""
        )
        lines += [
            f"- `{r.label}` ({params:,} parameters). WeightWatcher: {_ms(r.ww.median)}, "
            f"{len(r.df)} layers analysed, {_ms(r.ww.median / len(r.df))} per layer; its SVDs "
            f"{100 * wwp.svd / wwp.total:.0f}% of its profile, its power-law fits "
            f"{100 * wwp.fit / wwp.total:.0f}%, everything else "
            f"{100 * (1 - (wwp.svd + wwp.fit) / wwp.total):.0f}%.",
            f"  - (i) {r.speedup('same'):.1f}×: {_ms(r.times['same'].median)} for {k} "
            f"matrices, {_ms(r.times['same'].median / k)} each ({lanczos}`matrix_stats` "
            f"{100 * same.share('spectral'):.0f}% of the profile).",
            f"  - (ii) {r.speedup('dump'):.1f}×: every parameter is summarised "
            f"{per_param:.1f} times (its tensor and the two pools, for w and w − w0); largest "
            f"parts {dump.top()} of {_ms(dump.total)} profiled. Its σ_max part alone (w and "
            f"w − w0) would cap the speed-up at {r.ww.median / max(svd_only, 1e-9):.0f}×.",
            f"  - (iii) {r.speedup('file'):.1f}×: {_ms(r.times['file'].median)} per dump, "
            f"{r.times['file'].median / r.times['dump'].median:.2f}× the time of (ii); "
            f"{r.dumps} dumps in {file.batches:.0f} `_dumps_frame` "
            f"batch{'es' * (file.batches != 1)} (`BATCH_VALUES` = {stats.BATCH_VALUES:,} "
            f"weights); largest parts per dump {file.top()} of {_ms(file.total)} profiled."
            + _lapack_note(r, file),
        ]
    lines.append(
        "\nσ_max is the one cost both sides share: WeightWatcher always takes every singular "
        "value (its power-law fit needs the spectrum), weightzoo a LAPACK SVD below "
        f"`LANCZOS_MIN_DIM` = {stats.LANCZOS_MIN_DIM} and only the largest singular value "
        "(ARPACK) from it. (ii) and (iii) do far more than WeightWatcher: w − w0, every "
        "tensor (biases and norms too), two whole-network pools, quantiles (`stats.percentiles`, "
        "a radix select per segment; a pool's combined from its tensors'), histograms and node "
        "strengths; "
        "those parts, and assembling the polars frame, are what separates them from (i)."
    )
    return "\n".join(lines)


def _lapack_note(r: Result, file: Profile) -> str:
    """(iii)'s LAPACK SVDs, where the model has matrices for Lanczos: which matrices took them.

    `matrix_stats` sends a matrix to LAPACK below LANCZOS_MIN_DIM, when it is all zeros (the
    w - w0 of an epoch-0 dump: Lanczos is skipped for ||W||_F = 0) and when ARPACK fails.
    """
    lan = len(r.case.lanczos())
    if not lan:
        return ""
    k = len(r.case.weights)
    small = r.dumps * 2 * (k - lan)  # w and w - w0 of every dump
    zero = len(r.seeds) * (k - lan) if 0 in r.epochs else 0  # w - w0 at epoch 0: no SVD
    rest = round(file.lapack_calls) - (small - zero)
    return (
        f" Its σ_max part is {_ms(file.lanczos)} Lanczos and {_ms(file.lapack)} LAPACK per "
        f"dump: {file.lapack_calls:.0f} LAPACK SVDs in the file, one for each of the "
        f"{small - zero} matrices below the threshold that are not all zeros (the w − w0 of "
        "epoch 0 is, and `matrix_stats` knows σ_max = 0 without a decomposition)"
        + (f", {rest} ARPACK fallbacks" if rest else "")
        + "."
    )


def section_stats(opts: common.Options) -> str:
    """Markdown section (d): weightzoo's statistics vs WeightWatcher's analyze()."""
    head = "## (d) Weight statistics vs WeightWatcher"
    logging.getLogger("weightwatcher").setLevel(logging.ERROR)  # it warns: no CUDA, no torch SVD
    try:
        import weightwatcher as ww
    except ImportError:
        return (
            f"{head}\n\nSkipped: WeightWatcher is not installed "
            f"(`pip install weightwatcher=={WW_VERSION}`)."
        )
    cfg = yaml.safe_load((common.ROOT / "config" / "config.yaml").read_text())
    hist = stats.HistConfig.from_config(cfg["analysis"]["hist"])
    repeats = min(opts.repeats, 3) if opts.quick else opts.repeats
    min_s = 0.02 if opts.quick else 0.2
    seeds = next(iter(config.seed_blocks(cfg).values()))  # one training job's seeds

    torch.set_num_threads(opts.threads)
    results: list[Result] = []
    with threadpool_limits(opts.threads):  # numpy's and scipy's BLAS/LAPACK, both sides
        for i, case in enumerate(_cases(opts, cfg)):
            epochs = config.training_params(cfg, case.family)["dump_epochs"]
            path = opts.workdir / "stats" / f"{case.label}.parquet"
            _write_weights_file(case, path, seeds, epochs)
            try:
                m = _measure(
                    {
                        "ww": lambda c=case: _weightwatcher(ww, c.model),
                        "same": lambda c=case: _same_outputs(c),
                        "dump": lambda c=case: _one_dump(c, hist),
                        "file": lambda p=path: stats.file_stats(p, hist),
                    },
                    repeats,
                    min_s,
                    warm=i > 0,
                )
            finally:
                path.unlink(missing_ok=True)  # the paper MLP's is ~250 MB
            df = m["ww"].output
            if len(df) == 0:
                raise RuntimeError(f"WeightWatcher analyzed no layer of {case.label}")
            n = len(seeds) * len(epochs)
            profiles = {
                k: Profile.of(m[k].profile, m[k].runs, n if k == "file" else 1) for k in MEASURES
            }
            for k in ("dump", "file"):
                if min(profiles[k].parts[p] for p in ("spectral", "quantiles", "hist")) <= 0:
                    raise RuntimeError(f"profile of {k} misses a part: renamed in stats.py?")
            results.append(
                Result(
                    case,
                    seeds,
                    epochs,
                    m["ww"].timing,
                    {
                        "same": m["same"].timing,
                        "dump": m["dump"].timing,
                        "file": common.Timing([v / n for v in m["file"].timing.values]),
                    },
                    profiles,
                    WWProfile.of(m["ww"].profile, m["ww"].runs),
                    {k: _top(m[k].profile, m[k].runs) for k in MEASURES},
                    m["dump"].output,
                    m["file"].output.height,
                    df,
                )
            )

    timings, covered, agree, profiles, ww_profiles = [], [], [], [], []
    for r in results:
        label = f"`{r.label}`"
        timings.append(
            [
                label,
                f"{count_params(r.case.model):,}",
                _fmt(r.ww),
                _fmt(r.times["same"]),
                r.ratio("same"),
                _fmt(r.times["dump"]),
                r.ratio("dump"),
                _fmt(r.times["file"]),
                r.ratio("file"),
            ]
        )
        skipped = [
            f"`{k}`" for k in r.case.weights if r.case.kinds[k][1] not in set(r.df["longname"])
        ]
        covered.append(
            [
                label,
                r.case.how,
                len(r.case.kinds),
                f"σ_max, stable rank of {len(r.case.weights)} matrices "
                f"({len(r.case.lanczos())} by Lanczos)",
                f"{len(r.records)} rows × {len(stats.STAT_COLUMNS)} stats + {hist.bins}-bin hist",
                f"{r.file_rows} rows: {r.dumps} dumps × {r.file_rows // r.dumps}",
                f"{len(r.df)} of {len(r.case.weights)} matrices × {len(r.df.columns)} columns",
                ", ".join(skipped) or "none",
            ]
        )
        agree.append(_agreement(r.case, r.records, r.df))
        for key, (measure, _) in MEASURES.items():
            p = r.profiles[key]
            profiles.append([label, measure, _ms(p.total), *(p.cell(c) for c in PARTS)])
        ww_profiles.append([label, *r.ww_profile.row()])

    lowest = {k: min(results, key=lambda r, k=k: r.speedup(k)) for k in ("dump", "file")}
    legend = "; ".join(f"*{name}*: {what}" for name, what in PARTS.values())
    sections = [
        head,
        _method(opts, hist, ww.__version__, min_s, results),
        common.table(TIMING_HEADERS, timings),
        _verdict(results),
        "What each side computed per model (weightzoo (ii), (iii): one row per scope and target):",
        common.table(COVERAGE_HEADERS, covered),
        AGREEMENT_TEXT,
        common.table(AGREEMENT_HEADERS, agree),
        "Where weightzoo's time goes: cProfile of each figure (as many calls as one timed "
        "value), per call ((iii): per dump), each part's cumulative time less the parts "
        "nested in it, and its share of the profiled total. cProfile's overhead is included "
        "and inflates code made of many small calls (polars, Arrow, per-segment numpy calls), "
        f"so totals exceed the timings above. Parts: {legend}.",
        common.table(["model", "figure", "total", *(name for name, _ in PARTS.values())], profiles),
        "WeightWatcher's analyze(), profiled the same way: its SVDs (`scipy.linalg.svd`) and "
        "power-law fits (`apply_powerlaw`):",
        common.table(["model", "total", "its SVDs", "its power-law fits", "rest"], ww_profiles),
    ]
    for key, r in lowest.items():
        sections += [
            f"Top entries by own time, {MEASURES[key][0]} on `{r.label}` (its lowest "
            f"speed-up), per call{' (of all ' + str(r.dumps) + ' dumps)' if key == 'file' else ''}:",
            "\n".join(["```", *r.tops[key], "```"]),
        ]
    return "\n\n".join(sections)
