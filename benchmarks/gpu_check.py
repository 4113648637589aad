"""The prepared GPU check: weightzoo's CUDA tests, its throughput on the card, and a projection
of the paper-scale zoo's wall time on it, in one Markdown file.

    make gpu-check
    PYTHONPATH=src python3 benchmarks/gpu_check.py --output benchmarks/results-gpu.md

Needs torch, numpy, scipy and pyarrow (any recent versions) and the packages of EXTRA:
polars (training and statistics jobs write their tables with it; without it those rows say
so and the rest still runs) and pyyaml (it reads config/paper.yaml). No network, no
installs. On one GPU it runs in under 8 minutes: the measurements stop at a time budget and
the file says what was skipped. Without a GPU (or with --cpu) it runs a small CPU version,
at tiny sizes, and every GPU row reads "no GPU on this machine: not measured".

Data is made in memory (no dataset travels): ten classes of random prototype images mixed
with noise, in the shapes of MNIST (1x28x28) and CIFAR-10 (3x32x32).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime
import importlib.util
import itertools
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import common  # puts src/ on sys.path
import numpy as np
import torch
from common import NO_GPU, ROOT
from torch.overrides import TorchFunctionMode

from weightzoo import config as wz_config
from weightzoo import data, dumps, families, flops, training
from weightzoo.progress import Progress
from weightzoo.resume import ResumeState

REQUIRED = ("torch", "numpy", "scipy", "pyarrow")
EXTRA = {"polars": "polars", "yaml": "pyyaml"}  # module -> the package whose wheel to carry
GOAL_S = 20 * 60  # the whole paper-scale study on one card, dumps and statistics included
# NVIDIA's H100/H200 SXM datasheet rates, dense: leads, not measurements
DATASHEET = {"TF32 tensor cores": 495e12, "plain FP32": 67e12}
SHAPES = {"MNIST-shaped": (1, 28, 28), "CIFAR-shaped": (3, 32, 32)}
BATCH = 128  # config/paper.yaml's batch size (every family)
PAPER = (ROOT / "config" / "config.yaml", ROOT / "config" / "paper.yaml")
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
# the CPU version's stand-ins for the paper's largest architectures, and the short test jobs
TINY_ARCHS = {
    "mlp": {"depth": 1, "width": 16},
    "cnn": {"blocks": 1, "channels": 4},
    "vit": {"patch": 4, "depth": 1, "heads": 2, "embed": 8},
}
TEST_ARCHS = {
    "mlp": {"depth": 2, "width": 128},
    "cnn": {"blocks": 2, "channels": 8},
    "vit": {"patch": 4, "depth": 1, "heads": 2, "embed": 16},
}
# noise of the bf16 accuracy runs, per family: about 80-90 % after 3 epochs (measured on CPU)
ACCURACY_NOISE = {"mlp": 0.9, "cnn": 0.9, "vit": 0.7}
PROJECTION_POINTS = {"mlp": 6, "cnn": 5, "vit": 8}  # architectures measured per family


@dataclass(frozen=True)
class Sizes:
    """How big each part runs: the GPU check, or the small CPU version."""

    ks: tuple[int, ...]  # seeds stacked in the throughput table
    steps: int  # timed training steps per timing
    warmup: int
    repeats: int
    n_test: int  # images evaluated per timing
    job: tuple[int, int, int]  # train images, test images, epochs of the short test jobs
    accuracy: tuple[int, int, int]  # the same for the bf16 accuracy runs
    startup: tuple[int, int]  # train and test images the start-up subprocess loads
    matmul: int
    threads: int  # torch threads of the test jobs
    budget_s: float  # no new measurement starts after this (the file lists what was skipped)


GPU_SIZES = Sizes(
    ks=(10, 30),
    steps=20,
    warmup=5,
    repeats=3,
    n_test=10_000,
    job=(8192, 2048, 3),
    accuracy=(10_000, 2000, 3),
    startup=(60_000, 10_000),
    matmul=8192,
    threads=4,
    budget_s=360.0,
)
CPU_SIZES = Sizes(
    ks=(2,),
    steps=3,
    warmup=1,
    repeats=1,
    n_test=256,
    job=(1024, 256, 3),
    accuracy=(512, 256, 2),
    startup=(2048, 512),
    matmul=512,
    threads=1,
    budget_s=1e9,
)


@dataclass
class Check:
    """A run: its device, sizes, scratch folder, the paper's config and what it measured."""

    dev: torch.device
    sizes: Sizes
    work: Path
    paper: dict
    started: float = field(default_factory=time.perf_counter)
    rates: dict = field(default_factory=dict)  # (family, arch, shape, k, precision) -> Rate
    inputs: dict = field(default_factory=dict)  # the projection's other measured inputs
    data: dict = field(default_factory=dict)  # shape -> random tensors to time steps on

    @property
    def gpu(self) -> bool:
        return self.dev.type == "cuda"

    @property
    def label(self) -> str:
        return common.device_label(self.dev)

    def time_left(self) -> float:
        return self.sizes.budget_s - (time.perf_counter() - self.started)

    def precisions(self) -> list[str]:
        return ["fp32", "tf32", "bf16"] if self.gpu else ["fp32", "bf16"]

    def recipe(self, family: str, epochs: int) -> dict:
        """config/paper.yaml's training settings of `family` (batch 128, Adam or AdamW)."""
        return {**self.paper["families"][family]["train"], "epochs": epochs}

    def block(self, family: str, arch: dict, k: int, epochs: int = 1, **change) -> training.Block:
        """k seeds of `arch` under the paper's recipe (with `change`), no dumps: what
        `training.fit` trains here."""
        return training.Block(
            families.parse(family, arch),
            training.Recipe.from_config({**self.recipe(family, epochs), **change}),
            tuple(range(k)),
            (),
            training.DivergenceRule.from_config(self.paper["divergence"]),
        )


def has_gpu() -> bool:
    return torch.cuda.is_available()


def missing_extras() -> list[str]:
    return [pkg for mod, pkg in EXTRA.items() if importlib.util.find_spec(mod) is None]


def duration(seconds: float) -> str:
    if math.isnan(seconds):
        return "not measured"
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


# -- data made in memory -----------------------------------------------------------------------


def synthetic(shape: tuple, n_train: int, n_test: int, noise: float, seed: int = 0):
    """Ten classes, each a random prototype of 4 x 4 blocks (a structure convolutions and
    patches can find); an image is its class's prototype mixed with uniform noise (noise 1:
    pure noise, nothing to learn)."""
    rng = np.random.default_rng(seed)
    c, h, w = shape
    coarse = rng.integers(0, 256, (10, c, 4, 4)).astype(np.float32)
    protos = coarse.repeat(-(-h // 4), axis=2).repeat(-(-w // 4), axis=3)[:, :, :h, :w]

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, 10, n)
        x = (1 - noise) * protos[y] + noise * rng.integers(0, 256, (n, *shape))
        return np.rint(x).astype(np.uint8), y

    (x_train, y_train), (x_test, y_test) = split(n_train), split(n_test)
    return data._finish(x_train, y_train, x_test, y_test, 10, {"name": "synthetic"})


def random_prepared(shape: tuple, n_train: int, n_test: int):
    """Random images of a dataset's size, for timing what does not look at them."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (n_train + n_test, *shape), dtype=np.uint8)
    y = rng.integers(0, 10, n_train + n_test)
    return data._finish(x[:n_train], y[:n_train], x[n_train:], y[n_train:], 10, {"name": "r"})


def subset(td: training.TensorData, n: int) -> training.TensorData:
    """The first `n` training images of `td` (its test split unchanged)."""
    return training.TensorData(td.x_train[:n], td.y_train[:n], td.x_test, td.y_test, 10)


# -- precision, timing, counting ---------------------------------------------------------------


@contextlib.contextmanager
def precision(mode: str, dev: torch.device) -> Iterator[None]:
    """fp32 (TF32 off), tf32 (TF32 matmuls and convolutions) or bf16 (autocast over tf32)."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = mode != "fp32"
    try:
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=mode == "bf16"):
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


HOST_READS = {
    "item",
    "tolist",
    "numpy",
    "cpu",
    "nonzero",
    "__bool__",
    "__int__",
    "__float__",
    "__index__",
}


class HostReads(TorchFunctionMode):
    """Counts the tensor calls that read values back to the host (each a synchronisation on a
    GPU), except on the tensors in `skip` (the optimizer's step counters, which torch keeps
    on the host on a GPU too): on the CPU, what a GPU would synchronise on."""

    def __init__(self, skip: set[int] | None = None) -> None:
        super().__init__()
        self.skip, self.count = skip or set(), 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") in HOST_READS and not (args and id(args[0]) in self.skip):
            self.count += 1
        return func(*args, **(kwargs or {}))


def cuda_syncs(fn: Callable[[], object]) -> int:
    """Host-device synchronisations during fn, counted by torch's sync debug mode."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            fn()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


# -- the training work measured ----------------------------------------------------------------


@dataclass(frozen=True)
class Rate:
    """One measured configuration: seconds per training step (a batch of BATCH images for
    each of k stacked seeds) and per evaluated image (all k seeds)."""

    k: int
    forward: int  # FLOPs per image and seed
    step_s: float
    eval_s: float

    @property
    def samples_per_s(self) -> float:
        return self.k * BATCH / self.step_s

    @property
    def train_flop_per_s(self) -> float:
        return self.samples_per_s * flops.TRAIN_FACTOR * self.forward


def largest(check: Check) -> dict[str, tuple[str, dict]]:
    """Per family, the paper's architecture with the most FLOPs per image (ties: the last in
    config order, e.g. the most heads); tiny stand-ins in the CPU version."""
    if not check.gpu:
        return {f: (families.parse(f, a).id, a) for f, a in TINY_ARCHS.items()}
    out = {}
    for family in families.FAMILY_CONFIGS:
        archs = wz_config.architectures(check.paper, family)
        cost = [
            flops.forward_flops(families.parse(family, a.params), (3, 32, 32), 10) for a in archs
        ]
        best = archs[max(range(len(archs)), key=lambda i: (cost[i], i))]
        out[family] = best.id, best.params
    return out


def measure(check: Check, family: str, arch: str, params: dict, shape: str, k: int, mode: str):
    """Time `training.train_epoch` and `training.evaluate` of k stacked seeds (cached)."""
    key = (family, arch, shape, k, mode)
    if key not in check.rates:
        sz, dev = check.sizes, check.dev
        if shape not in check.data:
            images = random_prepared(SHAPES[shape], sz.steps * BATCH, sz.n_test)
            check.data[shape] = training.to_tensors(images, dev)
        td = check.data[shape]
        block = check.block(family, params, k)
        models = training.seed_models(block, SHAPES[shape], 10, dev)
        opt = training.make_optimizer(models.parameters(), block.recipe)
        orders = [torch.Generator().manual_seed(s) for s in models.seeds]

        def step() -> None:
            training.train_epoch(models, td, opt, orders, BATCH)

        def evaluate() -> None:
            training.evaluate(models, td.x_test, td.y_test)

        with precision(mode, dev):  # warm-up: the steps of `subset`, a batch evaluated
            training.train_epoch(models, subset(td, sz.warmup * BATCH), opt, orders, BATCH)
            step_s = common.timed(step, sz.repeats, warmup=0, device=dev).median
            training.evaluate(models, td.x_test[:BATCH], td.y_test[:BATCH])
            eval_s = common.timed(evaluate, sz.repeats, warmup=0, device=dev).median
        forward = flops.forward_flops(families.parse(family, params), SHAPES[shape], 10)
        check.rates[key] = Rate(k, forward, step_s / sz.steps, eval_s / sz.n_test)
    return check.rates[key]


# -- (a) the CUDA tests -------------------------------------------------------------------------

KILL_WORKER = (
    "import json, sys; from weightzoo import jobs; jobs.train_job(**json.loads(sys.argv[1]))"
)


def job_args(
    check: Check, name: str, family: str, device: str, epochs: int = 0, seeds=(0, 1, 2)
) -> dict:
    """A short training job on the synthetic MNIST-shaped file, as Snakemake would run it
    (`epochs` 0: the sizes' own)."""
    epochs = epochs or check.sizes.job[2]
    out = check.work / name
    files = {f"{k}_out": str(out / f"{k}.parquet") for k in ("weights", "metrics", "runs")}
    unit = {
        "dataset": "synthetic",
        "family": family,
        "arch": families.parse(family, TEST_ARCHS[family]).id,
        "arch_params": TEST_ARCHS[family],
        "setting": "default",
        "setting_values": {},
        "train": {**check.recipe(family, epochs), "batch_size": 32, "lr": 0.003},
        "seeds": list(seeds),
        "dump_epochs": sorted({0, 1, epochs}),
        "divergence": check.paper["divergence"],
    }
    return {
        "data_path": str(check.work / "job-data.npz"),
        "unit": unit,
        "outputs": {**files, "resume_dir": str(out / "resume")},
        "device": device,
        "threads": check.sizes.threads,
        "vectorise": True,
        "checkpoint_every_s": 0.0,
    }


def outputs(args: dict) -> dict:
    import pyarrow.parquet as pq

    files = args["outputs"]
    return {k: pq.read_table(files[f"{k}_out"]) for k in ("weights", "metrics", "runs")}


def same_bits(a: dict, b: dict) -> bool:
    """Weights (every dump), metrics and runs equal bit for bit, wall times aside."""
    flat = [t["weights"].column("values").combine_chunks().flatten().to_numpy() for t in (a, b)]
    tables = [[t[n].drop(["wall_time_s"]) for n in ("metrics", "runs")] for t in (a, b)]
    return np.array_equal(*flat) and all(x.equals(y) for x, y in zip(*tables, strict=True))


def run_job(args: dict) -> tuple[dict, list[str]]:
    """A training job run in this process: its outputs, and the ops that warned they have no
    deterministic implementation."""
    from weightzoo import jobs

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        jobs.train_job(**args)
    notes = {str(w.message).split(".")[0] for w in caught if "determinis" in str(w.message)}
    return outputs(args), sorted(notes)


def check_job(args: dict) -> tuple[bool, str]:
    """A finished job: its three files, a weight row per tensor of every dump, the final
    dumps rebuilding models that score what the job recorded, accuracy well above chance."""
    from weightzoo.models import build_model

    out = outputs(args)
    runs, w = out["runs"].to_pydict(), out["weights"]
    unit = args["unit"]
    seeds, epochs = unit["seeds"], unit["dump_epochs"]
    td = training.to_tensors(data.load_prepared(Path(args["data_path"])), torch.device("cpu"))
    model = build_model(unit["family"], unit["arch_params"], td.in_shape, 10)
    rebuilt = []
    for seed in seeds:
        rows = w.filter((w["seed"].to_numpy() == seed) & (w["epoch"].to_numpy() == epochs[-1]))
        model.load_state_dict(dumps.rows_to_state_dict(rows))
        with torch.no_grad():
            rebuilt.append(float((model(td.x_test).argmax(1) == td.y_test).float().mean()))
    d_acc = max(abs(a - b) for a, b in zip(rebuilt, runs["final_test_acc"], strict=True))
    acc = statistics.fmean(runs["final_test_acc"])
    n_rows = len(seeds) * len(epochs) * len(model.state_dict())
    ok = w.num_rows == n_rows and runs["device"] == [args["device"]] * len(seeds)
    ok = ok and not Path(args["outputs"]["resume_dir"]).exists() and acc > 0.5 and d_acc <= 0.01
    return ok, (
        f"{w.num_rows} weight rows ({len(seeds)} seeds × {len(epochs)} dumps × "
        f"{len(model.state_dict())} tensors), {out['metrics'].num_rows} metrics rows; test acc "
        f"{acc:.3f} (chance 0.1); the final dumps, rebuilt on the CPU, score within {d_acc:.4f}"
    )


def saved_epoch(resume: Path) -> int:
    return torch.load(resume / "state.pt", weights_only=True)["current"]["epoch"]


def kill_after(args: dict, epoch: int) -> int | None:
    """Run the job in a fresh process and SIGKILL it once it has saved `epoch`: the epoch it
    had saved, or None if it finished first."""
    command = [sys.executable, "-c", KILL_WORKER, json.dumps(args)]
    files = args["outputs"]
    with open(Path(files["weights_out"]).parent.with_suffix(".log"), "w") as log:
        proc = subprocess.Popen(command, env=ENV, stdout=log, stderr=log)
    resume, deadline = Path(files["resume_dir"]), time.monotonic() + 180
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if (resume / "state.pt").exists() and saved_epoch(resume) >= epoch:
                break
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    return saved_epoch(resume) if proc.returncode and (resume / "state.pt").exists() else None


def section_cuda_tests(check: Check) -> str:
    tests = ("training job", "resume after a kill", "same seed → same bits", "CPU vs CUDA")
    n_train, n_test, epochs = check.sizes.job
    synth = synthetic((1, 28, 28), n_train, n_test, noise=0.5)
    data.save_prepared(synth, check.work / "job-data.npz")
    rows: list[list] = []
    dev = check.dev.type
    if "polars" in missing_extras():
        for test in tests:
            rows.append([test, check.label, "not run: polars is missing (carry its wheel)"])
    else:
        for family in TEST_ARCHS:  # a short job per family: every file, every dump
            args = job_args(check, f"job-{family}", family, dev)
            t0 = time.perf_counter()
            run_job(args)
            ok, detail = check_job(args)
            seconds = time.perf_counter() - t0
            result = "pass" if ok else "**FAIL**"
            name = f"training job, {args['unit']['arch']}"
            rows.append([name, check.label, result, f"{detail}; {seconds:.1f} s"])
        # killed and resumed, and run twice, against one uninterrupted run
        resume = {"family": "cnn", "device": dev, "epochs": 6, "seeds": [0, 1]}
        reference, notes = run_job(job_args(check, "reference", **resume))
        again, _ = run_job(job_args(check, "again", **resume))
        args = job_args(check, "killed", **resume)
        done = kill_after(args, 2)
        if done is None:
            rows.append(["resume after a kill", check.label, "not run", "the job finished first"])
        else:
            ok = same_bits(run_job(args)[0], reference)
            result, same = ("pass", "bit-identical to") if ok else ("**FAIL**", "DIFFER from")
            detail = (
                f"SIGKILL once epoch {done} of 6 was saved, then rerun: every dump, metric and "
                f"run row {same} an uninterrupted run"
            )
            rows.append(["resume after a kill", check.label, result, detail])
        result = "bits match" if same_bits(again, reference) else "**bits differ**"
        warned = "; ".join(notes) or "no op warned that it has no deterministic implementation"
        detail = f"two runs of one job (deterministic algorithms on, as every job runs); {warned}"
        rows.append(["same seed → same bits", check.label, result, detail])
        if check.gpu:  # the same short job on the CPU and on the card
            run_job(job_args(check, "job-mlp-cpu", "mlp", "cpu"))
            acc = [
                outputs(job_args(check, n, "mlp", dev))["runs"]["final_test_acc"].to_pylist()
                for n in ("job-mlp", "job-mlp-cpu")
            ]
            diff = max(abs(a - b) for a, b in zip(*acc, strict=True)) * 100
            result = "agree" if diff <= 2 else "**differ**"
            means = f"CUDA {statistics.fmean(acc[0]):.4f}, CPU {statistics.fmean(acc[1]):.4f}"
            rows.append(
                [
                    "CPU vs CUDA final test accuracy",
                    check.label,
                    result,
                    f"largest |Δ| over 3 seeds {diff:.2f} points ({means})",
                ]
            )
    if not check.gpu:
        for test in tests:
            rows.append([test, "GPU", NO_GPU])
    return "\n\n".join(
        [
            "## (a) CUDA tests",
            "Short `jobs.train_job` runs, exactly as the workflow runs a training job "
            "(deterministic algorithms on, a resume checkpoint every epoch, dumps at epochs 0, 1 "
            f"and {epochs}), on synthetic MNIST-shaped data ({n_train:,} train / {n_test:,} test "
            f"images, {epochs} epochs, 3 seeds stacked). The resume test kills a job (CNN, 2 "
            "seeds, 6 epochs) in a fresh process with SIGKILL after a checkpoint, reruns it and "
            "compares every bit with an uninterrupted run.",
            common.table(["test", "device", "result", "detail"], rows),
        ]
    )


# -- (b) throughput ---------------------------------------------------------------------------


THROUGHPUT_HEADERS = ["device", "data", "model", "K", "precision", "train samples/s"]
THROUGHPUT_HEADERS += ["model TFLOP/s", "eval samples/s"]


def section_throughput(check: Check) -> str:
    rows: list[list] = []
    skipped = 0
    for family, (arch, params) in largest(check).items():
        for shape in SHAPES:
            for k in check.sizes.ks:
                for mode in check.precisions():
                    if check.time_left() < 120:
                        skipped += 1
                        continue
                    r = measure(check, family, arch, params, shape, k, mode)
                    tflops = f"{r.train_flop_per_s / 1e12:.3f}"
                    eval_rate = f"{k / r.eval_s:,.0f}"
                    rows.append(
                        [
                            check.label,
                            shape,
                            arch,
                            k,
                            mode,
                            f"{r.samples_per_s:,.0f}",
                            tflops,
                            eval_rate,
                        ]
                    )
    if skipped:
        rows.append(["", "", "", "", "", f"{skipped} configuration(s) skipped: time budget"])
    if not check.gpu:
        rows.append(
            ["GPU", "both", "largest of config/paper.yaml", "10, 30", "fp32, tf32, bf16", NO_GPU]
        )
    which = (
        "the largest architecture per family of config/paper.yaml (most FLOPs per image)"
        if check.gpu
        else "**CPU version: tiny architectures and sizes, not for reporting**"
    )
    sz = check.sizes
    return "\n\n".join(
        [
            "## (b) Throughput",
            f"Training steps (`training.train_epoch`: batch {BATCH} per seed, the paper's Adam or "
            "AdamW settings) and evaluation (`training.evaluate`) of K seeds stacked as a job "
            f"stacks them, on data made in memory: {which}. Median of {sz.repeats} timing(s) of "
            f"{sz.steps} steps after {sz.warmup} warm-up step(s), with deterministic algorithms on "
            "(as every job runs). *samples/s* counts the images of all K seeds; *model TFLOP/s* "
            "is samples/s × 3 × the forward FLOPs of `weightzoo.flops`. fp32: TF32 off; tf32: "
            "TF32 matmuls and convolutions (torch's defaults, which the training loop keeps, are "
            "TF32 convolutions and fp32 matmuls); bf16: `torch.autocast(bfloat16)` over tf32.",
            common.table(THROUGHPUT_HEADERS, rows),
            "Large matrix products (the realistic ceiling for the FLOP floor):",
            matmul_peaks(check),
            section_bf16(check),
            section_syncs(check),
            section_startup(check),
            section_progress_cost(check),
        ]
    )


def matmul_peaks(check: Check) -> str:
    n = check.sizes.matmul
    rows: list[list] = []
    for mode in check.precisions():
        dtype = torch.bfloat16 if mode == "bf16" else torch.float32
        a, b = (torch.randn(n, n, device=check.dev, dtype=dtype) for _ in range(2))
        with precision("fp32" if mode == "fp32" else "tf32", check.dev):
            a @ b
            product = common.timed(lambda a=a, b=b: a @ b, 10, warmup=0, device=check.dev)
            rate = 2 * n**3 / product.median
        check.inputs[f"matmul_{mode}"] = rate
        rows.append([check.label, f"{n}³", mode, f"{rate / 1e12:.1f}"])
    if not check.gpu:
        rows.append(["GPU", "8192³", "fp32, tf32, bf16", NO_GPU])
    return common.table(["device", "product", "precision", "TFLOP/s"], rows)


def section_bf16(check: Check) -> str:
    """bf16 autocast against the reference precision: accuracy after a short run."""
    n_train, n_test, epochs = check.sizes.accuracy
    k, reference = check.sizes.ks[0], "tf32" if check.gpu else "fp32"
    headers = ["device", "model", "noise", f"{reference} acc", "bf16 acc", "Δ (points)"]
    headers.append("within 0.5 points")
    rows: list[list] = []
    kept = []
    for family, (arch, params) in largest(check).items():
        if check.time_left() < 90:
            rows.append([check.label, arch, "", "skipped: time budget"])
            continue
        noise = ACCURACY_NOISE[family]
        td = training.to_tensors(synthetic((1, 28, 28), n_train, n_test, noise, seed=1), check.dev)
        acc = {}
        block = check.block(family, params, k, epochs)
        for mode in (reference, "bf16"):
            models = training.seed_models(block, td.in_shape, 10, check.dev)
            with precision(mode, check.dev):
                results = training.fit(models, td, block)
            acc[mode] = statistics.fmean(r.final_test_acc for r in results)
        diff = (acc["bf16"] - acc[reference]) * 100
        kept.append(abs(diff) <= 0.5)
        within = "yes" if kept[-1] else "no"
        rows.append(
            [
                check.label,
                arch,
                noise,
                f"{acc[reference]:.4f}",
                f"{acc['bf16']:.4f}",
                f"{diff:+.2f}",
                within,
            ]
        )
    check.inputs["bf16_kept"] = check.gpu and bool(kept) and all(kept)
    if not check.gpu:
        rows.append(["GPU", "largest of config/paper.yaml", "", NO_GPU])
    return "\n\n".join(
        [
            f"bf16 autocast against {reference}: the mean final test accuracy of {k} stacked seeds "
            f"after {epochs} epochs on synthetic MNIST-shaped data ({n_train:,} / {n_test:,} "
            "images; the noise, per family, keeps the accuracy off its ceiling). The projection "
            "uses bf16 only if every family stays within 0.5 points.",
            common.table(headers, rows),
        ]
    )


def section_syncs(check: Check) -> str:
    """Host-device synchronisations per step and per epoch of `training.train_epoch`, from
    two epochs of different lengths (per step: the difference over the extra steps)."""
    s1 = max(2, check.sizes.steps // 2)
    s2, k = 2 * s1, check.sizes.ks[0]
    rows: list[list] = []
    for family, (arch, params) in largest(check).items():
        shape = SHAPES["MNIST-shaped"]
        td = training.to_tensors(random_prepared(shape, s2 * BATCH, check.sizes.n_test), check.dev)
        block = check.block(family, params, k)
        models = training.seed_models(block, shape, 10, check.dev)
        opt = training.make_optimizer(models.parameters(), block.recipe)
        orders = [torch.Generator().manual_seed(s) for s in models.seeds]

        def epoch(n: int, td=td, models=models, opt=opt, orders=orders) -> None:
            training.train_epoch(models, subset(td, n * BATCH), opt, orders, BATCH)

        epoch(1)  # the optimizer's state exists from here on
        if check.gpu:
            counts = [cuda_syncs(lambda n=n, epoch=epoch: epoch(n)) for n in (s1, s2)]
            method = "`torch.cuda.set_sync_debug_mode`"
        else:
            steps = {id(s["step"]) for s in opt.state.values() if "step" in s}
            counts = []
            for n in (s1, s2):
                with HostReads(steps) as reads:
                    epoch(n)
                counts.append(reads.count)
            method = "values read back to the host (each a sync on a GPU)"
        per_step = (counts[1] - counts[0]) / (s2 - s1)
        rows.append(
            [
                check.label,
                f"{arch}, K = {k}",
                f"{per_step:g}",
                f"{counts[0] - per_step * s1:g}",
                method,
            ]
        )
    if not check.gpu:
        rows.append(["GPU", "", NO_GPU, "", "`torch.cuda.set_sync_debug_mode`"])
    return "\n\n".join(
        [
            f"Host–device synchronisations in `training.train_epoch`, from epochs of {s1} and {s2} "
            "steps (per step: the difference over the extra steps). The loop reads values back "
            "once per epoch, the epoch's losses and accuracies (which divergence detection "
            "needs); Adam's step counters live on the host on a GPU too and are not counted.",
            common.table(["device", "model", "per step", "per epoch", "measured with"], rows),
        ]
    )


STARTUP_WORKER = """
import json, sys, time
t = {"python": time.time()}
import torch
t["torch"] = time.time()
try:
    from weightzoo import jobs  # what a training job imports, polars too
except ImportError:
    pass
from weightzoo import data, training
t["weightzoo"] = time.time()
dev = training.select_device(sys.argv[2])
if dev.type == "cuda":  # the context and the cuBLAS and cuDNN handles
    x = torch.randn(64, 3, 8, 8, device=dev)
    (x.flatten(1) @ x.flatten(1).T).sum().item()
    torch.nn.functional.conv2d(x, torch.randn(4, 3, 3, 3, device=dev)).sum().item()
t["device"] = time.time()
td = training.to_tensors(data.load_prepared(sys.argv[1]), dev)
if dev.type == "cuda":
    torch.cuda.synchronize()
t["data"] = time.time()
print(json.dumps(t))
"""


def section_startup(check: Check) -> str:
    """A training job's fixed cost, in a fresh process: interpreter, imports, device, data."""
    stages = [
        "interpreter",
        "import torch",
        "import weightzoo (+ polars)",
        "device init",
        "data to device",
    ]
    rows: list[list] = []
    n_train, n_test = check.sizes.startup
    for shape, dims in SHAPES.items():
        path = check.work / f"startup-{shape}.npz"
        data.save_prepared(random_prepared(dims, n_train, n_test), path)
        t0 = time.time()
        command = [sys.executable, "-c", STARTUP_WORKER, str(path), check.dev.type]
        out = subprocess.run(command, env=ENV, capture_output=True, text=True, check=True)
        t = json.loads(out.stdout.strip().splitlines()[-1])
        marks = [t0, t["python"], t["torch"], t["weightzoo"], t["device"], t["data"]]
        check.inputs.setdefault("startup_s", {})[shape] = marks[-1] - t0
        seconds = [f"{b - a:.2f}" for a, b in itertools.pairwise(marks)]
        rows.append(
            [
                check.label,
                f"{shape}, {n_train:,} + {n_test:,} images",
                *seconds,
                f"**{marks[-1] - t0:.2f}**",
            ]
        )
    if not check.gpu:
        rows.append(["GPU", "both, 60,000 + 10,000 images", NO_GPU])
    return "\n\n".join(
        [
            "Start-up of a training job in a fresh process, in seconds: what every job pays before "
            "its first step (a packed job pays it once for all its cells).",
            common.table(["device", "data", *stages, "total"], rows),
        ]
    )


def section_progress_cost(check: Check) -> str:
    """The time spent in the progress log's callback against the training it reports on."""
    n_train, n_test, _ = check.sizes.job
    td = training.to_tensors(synthetic((1, 28, 28), n_train, n_test, 0.5), check.dev)
    rows: list[list] = []
    for family in ("mlp", "cnn"):
        arch = families.parse(family, TEST_ARCHS[family]).id
        logged = Progress(arch, [0, 1, 2], 5).wrap(lambda row: None)
        spent = [0.0]

        def on_epoch(row: dict, logged=logged, spent=spent) -> None:
            t0 = time.perf_counter()
            logged(row)
            spent[0] += time.perf_counter() - t0

        block = check.block(family, TEST_ARCHS[family], 3, epochs=5, batch_size=64)
        models = training.seed_models(block, td.in_shape, 10, check.dev)
        t0 = time.perf_counter()
        training.fit(models, td, block, training.Callbacks(on_epoch=on_epoch))
        common.sync(check.dev)
        total = time.perf_counter() - t0
        check.inputs.setdefault("progress_share", {})[family] = spent[0] / total
        rows.append(
            [
                check.label,
                f"{arch}, 3 seeds, 5 epochs",
                f"{total:.2f} s",
                f"{spent[0] * 1e3:.2f} ms",
                f"{spent[0] / total:.3%}",
            ]
        )
    return "\n\n".join(
        [
            "Cost of the progress log (`weightzoo.progress`: a line per epoch, and one every 30 s "
            "within long epochs): the time spent in its callback against the training it reports "
            f"on ({n_train:,} images, batch 64: short epochs, the worst case for a cost per "
            "epoch). Target ≤ 1 %.",
            common.table(["device", "job", "training", "in the progress log", "share"], rows),
        ]
    )


# -- (c) the projection ------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """How the zoo's seed blocks (dataset x architecture x block of seeds) become jobs."""

    jobs_per_family: int  # pack.jobs_per_family; 0: one job per block, as today
    seeds_per_job: int

    def jobs(self, blocks: int) -> int:
        """Training jobs of one dataset x family of `blocks` seed blocks."""
        return min(self.jobs_per_family, blocks) if self.jobs_per_family else blocks


def shape_of(dataset: str) -> str:
    return "CIFAR-shaped" if data.IMAGE_SHAPES[dataset][0] == 3 else "MNIST-shaped"


def spread(forward: list[int], n: int) -> list[int]:
    """Indices of up to `n` architectures spread evenly in log FLOPs, the smallest and the
    largest included (of equal FLOPs, the last in config order)."""
    order = sorted(range(len(forward)), key=lambda i: (forward[i], i))
    if len(order) <= n:
        return order
    targets = np.geomspace(forward[order[0]], forward[order[-1]], n)
    picked = {min(order, key=lambda i: (abs(math.log(forward[i] / t)), -i)) for t in targets}
    return sorted(picked, key=lambda i: (forward[i], i))


def interpolate(points: list[tuple[float, float]], f: float) -> float:
    """A time at f FLOPs from measured (FLOPs, time) points: log-log between them, the
    smallest's time below them (launch-bound), proportional to FLOPs above them."""
    points = sorted(points)
    if f >= points[-1][0]:
        return points[-1][1] * f / points[-1][0]
    xs, ys = np.log([p[0] for p in points]), np.log([p[1] for p in points])
    return float(np.exp(np.interp(math.log(f), xs, ys)))


def project(
    cells: list[flops.CellFlops], rates: dict, layout: Layout, dumps_per_run: dict, inputs: dict
) -> dict:
    """The zoo's wall time on one card, jobs one after another: each cell's seed blocks ×
    (epochs × (steps × seconds per step + test images × seconds per image) + the training
    split evaluated twice), its dumps, start-up × jobs, and statistics on the CPU cores.

    rates: (shape, family) -> {arch: Rate} at k = seeds_per_job (architectures not measured
    are interpolated by FLOPs); dumps_per_run: family -> dumps of one run; inputs:
    startup_s per shape, dump_s and stats_s per dumped value, stats_job_s, cores.
    """
    train: dict[tuple[str, str], float] = collections.Counter()
    blocks: dict[tuple[str, str], int] = collections.Counter()
    values = 0
    for c in cells:
        measured = rates[shape_of(c.dataset), c.family]
        if c.arch in measured:
            step_s, eval_s = measured[c.arch].step_s, measured[c.arch].eval_s
        else:
            step_s = interpolate([(r.forward, r.step_s) for r in measured.values()], c.forward)
            eval_s = interpolate([(r.forward, r.eval_s) for r in measured.values()], c.forward)
        n_blocks = math.ceil(c.seeds / layout.seeds_per_job)
        epoch_s = math.ceil(c.n_train / BATCH) * step_s + c.n_test * eval_s
        train[c.dataset, c.family] += n_blocks * (c.epochs * epoch_s + 2 * c.n_train * eval_s)
        blocks[c.dataset, c.family] += n_blocks
        values += c.seeds * dumps_per_run[c.family] * c.n_params
    jobs = {key: layout.jobs(n) for key, n in blocks.items()}
    startup = sum(n * inputs["startup_s"][shape_of(d)] for (d, _), n in jobs.items())
    stats = values * inputs["stats_s"] + sum(jobs.values()) * inputs["stats_job_s"]
    parts = {
        "training": sum(train.values()),
        "dumps": values * inputs["dump_s"],
        "start-up": startup,
        "statistics": stats / inputs["cores"],
    }
    return {
        **parts,
        "total": sum(parts.values()),
        "jobs": sum(jobs.values()),
        "blocks": sum(blocks.values()),
        "values": values,
        "by_group": dict(train),
    }


STATS_WORKER = """
import json, sys, time
t0 = time.time()
from weightzoo import jobs, stats  # what a statistics job imports
t = {"imports": time.time() - t0}
analysis = json.loads(sys.argv[2])  # the config's analysis.hist and analysis.spectral
for i, path in enumerate(sys.argv[3:]):
    s = time.perf_counter()
    out = {"stats_out": f"{sys.argv[1]}/s{i}.parquet", "maps_out": f"{sys.argv[1]}/m{i}.parquet"}
    jobs.stats_job(weights_path=path, family="mlp", in_shape=[1, 28, 28], **analysis, **out)
    t[path] = time.perf_counter() - s
print(json.dumps(t))
"""


DUMP_HEADERS = ["device", "work", "values", "time", "per value"]


def dump_and_stats_costs(check: Check) -> str:
    """Per dumped value: a dump as a job makes it (off the device, its tables, the resume
    files, the weights file) and its statistics job (in a fresh process; two file sizes give
    the cost per value and per job)."""
    rows: list[list] = []
    k, files, sizes = check.sizes.ks[0], [], []
    for width in (64, 500) if check.gpu else (16, 256):
        models = training.seed_models(
            check.block("mlp", {"depth": 2, "width": width}, k), (1, 28, 28), 10, check.dev
        )
        store = ResumeState(check.work / f"dumps-{width}", {"width": width})
        sink = dumps.DumpSink(store, models.kinds, dataset="d", family="mlp", arch=str(width))
        states = {seed: models.seed_state(i) for i, seed in enumerate(models.seeds)}
        files.append(str(check.work / f"dumps-{width}.parquet"))
        sizes.append(2 * k * models.n_params)
        common.sync(check.dev)
        t0 = time.perf_counter()
        sink(0, states)
        sink(1, states)
        store.flush()
        store.assemble(files[-1], {seed: [0, 1] for seed in models.seeds})
        store.remove()
        seconds = time.perf_counter() - t0
        check.inputs["dump_s"] = seconds / sizes[-1]  # the larger file's, the last
        rows.append(
            [
                check.label,
                f"dumps of mlp-d2-w{width}: {k} seeds × 2",
                f"{sizes[-1] / 1e6:.2f} M",
                f"{seconds:.3f} s",
                f"{seconds / sizes[-1] * 1e9:.0f} ns",
            ]
        )
    if "polars" in missing_extras():
        check.inputs.update(stats_s=math.nan, stats_job_s=math.nan, cores=os.cpu_count() or 1)
        rows.append(["CPU", "statistics jobs", "", "not run: polars is missing"])
        return common.table(DUMP_HEADERS, rows)
    analysis = {k: check.paper["analysis"][k] for k in ("hist", "spectral")}
    command = [sys.executable, "-c", STATS_WORKER, str(check.work), json.dumps(analysis), *files]
    out = subprocess.run(command, env=ENV, capture_output=True, text=True, check=True)
    t = json.loads(out.stdout.strip().splitlines()[-1])
    per_value = max(t[files[1]] - t[files[0]], 0.0) / (sizes[1] - sizes[0])
    check.inputs["stats_s"] = per_value
    check.inputs["stats_job_s"] = t["imports"] + max(t[files[0]] - per_value * sizes[0], 0.0)
    check.inputs["cores"] = os.cpu_count() or 1
    for path, n in zip(files, sizes, strict=True):
        rows.append(
            [
                "CPU",
                f"statistics job of {Path(path).stem}",
                f"{n / 1e6:.2f} M",
                f"{t[path]:.3f} s",
                f"{t[path] / n * 1e9:.0f} ns",
            ]
        )
    rows.append(["CPU", "statistics job: process start and imports", "", f"{t['imports']:.2f} s"])
    return common.table(DUMP_HEADERS, rows)


def projection_rates(check: Check, k: int, modes: list[str]) -> tuple[dict, list[str]]:
    """mode -> (shape, family) -> {arch: Rate}: several of the paper's architectures per
    family measured at k (spread in FLOPs); the names of those skipped for time."""
    out: dict = {}
    skipped = []
    for mode in modes:
        for shape, dims in SHAPES.items():
            for family in families.FAMILY_CONFIGS:
                archs = wz_config.architectures(check.paper, family)
                cost = [
                    flops.forward_flops(families.parse(family, a.params), dims, 10) for a in archs
                ]
                got = out.setdefault(mode, {}).setdefault((shape, family), {})
                for i in spread(cost, PROJECTION_POINTS[family]):
                    if got and check.time_left() < 30:
                        skipped.append(f"{archs[i].id} ({shape}, {mode})")
                        continue
                    got[archs[i].id] = measure(
                        check, family, archs[i].id, archs[i].params, shape, k, mode
                    )
    return out, skipped


def section_projection(check: Check, layout: Layout) -> str:
    paper = check.paper
    study = flops.study_flops(paper)
    dumps_per_run = {
        f: len(wz_config.dump_epochs(paper, paper["families"][f]["train"]["epochs"]))
        for f in families.FAMILY_CONFIGS
    }
    blocks = collections.Counter()
    for c in study.cells:
        blocks[c.dataset, c.family] += math.ceil(c.seeds / layout.seeds_per_job)
    today = Layout(0, layout.seeds_per_job)
    n_jobs = sum(layout.jobs(n) for n in blocks.values())
    floor: list[list] = []
    for (dataset, family), total in sorted(study.by("dataset", "family").items()):
        floor.append([dataset, family, f"{total:.3e}"])
    for family, total in sorted(study.by("family").items()):
        floor.append(["all", family[0], f"{total:.3e}"])
    floor.append(["**all**", "", f"**{study.total:.3e}**"])
    rates: list[list] = []
    if check.gpu:
        tf32 = check.inputs["matmul_tf32"]
        rates.append(
            [
                f"measured: TF32 {check.sizes.matmul}³ matmul on {check.label}",
                f"{tf32 / 1e12:.0f}",
                duration(study.total / tf32),
            ]
        )
    else:
        rates.append(["measured: TF32 8192³ matmul on the card", NO_GPU])
    for name, rate in DATASHEET.items():
        rates.append(
            [
                f"H100/H200 datasheet, {name} (a lead, not measured)",
                f"{rate / 1e12:.0f}",
                duration(study.total / rate),
            ]
        )
    parts = [
        "## (c) Projection: the paper-scale zoo on one card",
        f"config/paper.yaml: {len(study.cells)} cells (dataset × architecture) × "
        f"{paper['seeds']['count']} seeds = {sum(c.seeds for c in study.cells):,} networks, in "
        f"{sum(blocks.values())} seed blocks of `seeds_per_job: {layout.seeds_per_job}`. Layout "
        f"assumed: `pack.jobs_per_family: {layout.jobs_per_family}`, the blocks of each "
        f"dataset × family spread over {layout.jobs_per_family} jobs: {n_jobs} training jobs "
        f"(without packing: {sum(today.jobs(n) for n in blocks.values())}), run one after "
        "another on the card; one statistics job per training job, on the CPU cores.",
        "**FLOP floor** (`weightzoo.flops.study_flops`: every training step at 3 × the forward "
        "FLOPs of its images, plus the evaluations a run makes, the test split before "
        "training and after every epoch and the training split before and after):",
        common.table(["dataset", "family", "model FLOPs"], floor),
        common.table(["rate", "TFLOP/s", "FLOP floor = FLOPs / rate"], rates),
        "Dumps and statistics, per dumped value (measured on this machine):",
        dump_and_stats_costs(check),
    ]
    if not check.gpu:
        rows: list[list] = []
        rows.append(["GPU", NO_GPU, "", "", "", "", "20 min"])
        parts += [
            "**Projected wall time on the card: not measured** (no GPU on this machine). On a "
            "GPU machine this script fills it in from the measured step and evaluation times of "
            f"several architectures per family at K = {layout.seeds_per_job} (the others "
            "interpolated by FLOPs), the start-up per job and the dump and statistics costs.",
            common.table(
                ["device", "training", "dumps", "start-up × jobs", "statistics", "total", "goal"],
                rows,
            ),
        ]
        return "\n\n".join(parts)
    modes = ["fp32", "tf32"] + (["bf16"] if check.inputs.get("bf16_kept") else [])
    measured, skipped = projection_rates(check, layout.seeds_per_job, modes)
    cores = f"statistics (/ {check.inputs['cores']} cores)"
    headers = ["precision", "pack.jobs_per_family (jobs)", "training", "dumps"]
    headers += ["start-up × jobs", cores, "total", "20-min goal", "FLOP floor / training"]
    rows: list[list] = []
    best = None
    for mode in modes:
        for lay in (layout, today):
            p = project(study.cells, measured[mode], lay, dumps_per_run, check.inputs)
            best = p if lay is layout and (best is None or p["total"] < best["total"]) else best
            fraction = study.total / check.inputs["matmul_tf32"] / p["training"]
            times = [duration(p[x]) for x in ("training", "dumps", "start-up", "statistics")]
            goal = "met" if p["total"] <= GOAL_S else "missed"
            rows.append(
                [
                    mode,
                    f"{lay.jobs_per_family} ({p['jobs']})",
                    *times,
                    f"**{duration(p['total'])}**",
                    goal,
                    f"{fraction:.1%}",
                ]
            )
    groups: list[list] = []
    flop_by = study.by("dataset", "family")
    for key, seconds in sorted(best["by_group"].items()):
        groups.append(
            [*key, duration(seconds), f"{flop_by[key]:.2e}", f"{flop_by[key] / seconds / 1e12:.3g}"]
        )
    names = sorted({arch for by in measured[modes[0]].values() for arch in by})
    parts += [
        f"**Projected wall time on {check.label}** — a projection from the measured inputs "
        "of this file, not a run of the zoo. TF32 and bf16 rows assume the training jobs "
        "enable them (the loop keeps torch's defaults today: fp32 matmuls, TF32 convolutions).",
        common.table(headers, rows),
        common.table(
            ["dataset", "family", "training (best precision)", "model FLOPs", "model TFLOP/s"],
            groups,
        ),
        f"Architectures measured at K = {layout.seeds_per_job} (the others interpolated by "
        f"forward FLOPs, log-log): {', '.join(names)}"
        + (f"; skipped for time: {', '.join(skipped)}" if skipped else "")
        + ".",
    ]
    return "\n\n".join(parts)


# -- the file ----------------------------------------------------------------------------------


def header(check: Check, argv: list[str], status: str) -> str:
    found = []
    for mod in (*REQUIRED, *EXTRA):
        name = EXTRA.get(mod, mod)
        if importlib.util.find_spec(mod) is None:
            found.append(f"{name} **missing**")
        else:
            found.append(f"{name} {getattr(__import__(mod), '__version__', '?')}")
    lines = [
        "# weightzoo on one GPU: CUDA tests, throughput, projection",
        f"Generated by `python benchmarks/gpu_check.py {' '.join(argv)}`".rstrip()
        + f" on {datetime.date.today().isoformat()} {status}.",
        f"Machine: {common.machine(memory=False)}.",
        "Needs torch, numpy, scipy, pyarrow (any recent versions) and polars, pyyaml; "
        f"found: {', '.join(found)}.",
    ]
    if not check.gpu:
        why = "--cpu asked for" if has_gpu() else "No GPU was available"
        lines.append(
            f"**{why} when this file was generated.** This is the small CPU "
            "version: tiny sizes that check the script runs (its CPU figures are not for "
            f'reporting), and every GPU row reads "{NO_GPU}". The FLOP floor of section (c) '
            "is exact arithmetic and holds anywhere."
        )
    return "\n\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results-gpu.md")
    parser.add_argument("--cpu", action="store_true", help="the small CPU version, GPU or not")
    parser.add_argument(
        "--jobs-per-family",
        type=int,
        default=4,
        help="pack.jobs_per_family of the projected layout (0: no packing)",
    )
    parser.add_argument("--seeds-per-job", type=int, help="default: config/paper.yaml's")
    args = parser.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    if importlib.util.find_spec("yaml") is None:
        sys.exit("gpu_check: pyyaml is missing (it reads config/paper.yaml): carry its wheel")
    gpu = has_gpu() and not args.cpu
    dev = training.select_device("cuda" if gpu else "cpu")
    training.set_determinism(4)
    paper = wz_config.load_config(*PAPER)
    layout = Layout(args.jobs_per_family, args.seeds_per_job or paper["seeds_per_job"])
    sections = [
        ("CUDA tests", section_cuda_tests),
        ("throughput", section_throughput),
        ("projection", lambda check: section_projection(check, layout)),
    ]
    with tempfile.TemporaryDirectory(prefix="weightzoo-gpu-check-") as work:
        check = Check(dev, GPU_SIZES if gpu else CPU_SIZES, Path(work), paper)
        parts: list[str] = []
        for name, section in sections:
            t0 = time.perf_counter()
            print(f"[gpu-check] {name} ...", flush=True)
            parts.append(section(check))
            print(f"[gpu-check] {name} done in {time.perf_counter() - t0:.0f} s", flush=True)
            status = f"(still running: {len(parts)} of {len(sections)} sections done)"
            common.write(args.output, "\n\n".join([header(check, argv, status), *parts]) + "\n")
        seconds = time.perf_counter() - check.started
        common.write(
            args.output, "\n\n".join([header(check, argv, f"in {seconds:.0f} s"), *parts]) + "\n"
        )
    print(f"[gpu-check] wrote {args.output} in {seconds:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
