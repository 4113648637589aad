"""Training benchmarks: (a) data path and loop, (b) seed batching, (c) dump cost, memory.

Each figure compares weightzoo with a reference measured in the same run, same process
settings (threads, device), same model, data, batch size and epochs.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from functools import partial
from pathlib import Path

import common
import numpy as np
import pyarrow.parquet as pq
import torch
import torch.nn.functional as F
import yaml
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from weightzoo import data, dumps, families, jobs, training
from weightzoo.models import build_model, count_params
from weightzoo.resume import ResumeState

ADAM = {
    "optimizer": "adam",
    "lr": 0.003,
    "batch_size": 64,
    "epochs": 2,
    "weight_decay": 0.0,
    "momentum": 0.9,
    "schedule": "cosine",
    "init_scale": 1.0,
    "train_fraction": 1.0,
}
ADAMW = {**ADAM, "optimizer": "adamw", "lr": 0.001, "weight_decay": 0.05}
NEVER = {"max_loss_ratio": 0.0, "patience": 1}  # only a NaN or infinite loss stops a seed
CONFIG = yaml.safe_load((common.ROOT / "config" / "config.yaml").read_text())
# architectures of the default config (digits) and of config/paper.yaml's kind (28x28), with
# config/replicate.yaml's largest MLP and ViT (its largest CNN is the b3-c16 above them)
ARCHS = {
    "digits": [
        ("mlp", {"depth": 2, "width": 64}),
        ("cnn", {"blocks": 2, "channels": 16}),
        ("vit", {"patch": 2, "depth": 1, "heads": 4, "embed": 32}),
    ],
    "mnist-shaped": [
        ("mlp", {"depth": 2, "width": 256}),
        ("cnn", {"blocks": 3, "channels": 16}),
        ("vit", {"patch": 4, "depth": 2, "heads": 4, "embed": 32}),
        ("mlp", {"depth": 2, "width": 1000}),
        ("vit", {"patch": 7, "depth": 1, "heads": 16, "embed": 32}),
    ],
}
SEED_ARCHS = [
    ("mlp", {"depth": 2, "width": 32}),
    ("cnn", {"blocks": 2, "channels": 8}),
    ("vit", {"patch": 2, "depth": 1, "heads": 2, "embed": 16}),
]
DEFAULT_DUMP_EPOCHS = [0, 1, 2, 5, 10, 20, 30]


def recipe(family: str, epochs: int) -> dict:
    return {**(ADAMW if family == "vit" else ADAM), "epochs": epochs}


def block(family: str, arch: dict, train: dict, seeds: list[int], dump_epochs=()):
    """What `training.seed_models` builds and `training.fit` trains."""
    return training.Block(
        families.parse(family, arch),
        training.Recipe.from_config(train),
        tuple(seeds),
        tuple(dump_epochs),
        training.DivergenceRule.from_config(NEVER),
    )


def job_params(family: str, arch: dict, train: dict, seeds: list[int], dump_epochs) -> dict:
    """A training job's unit (`jobs.UNIT_KEYS`), as the workflow passes it."""
    return {
        "dataset": "bench",
        "family": family,
        "arch": families.parse(family, arch).id,
        "arch_params": arch,
        "setting": "default",
        "setting_values": {},
        "train": train,
        "seeds": list(seeds),
        "dump_epochs": list(dump_epochs),
        "divergence": NEVER,
    }


def job_outputs(folder: Path, name: str) -> dict:
    """A training job's files (`jobs.TrainOutputs`), in `folder`."""
    files = {
        f"{k}_out": str(folder / f"{name}-{k}.parquet") for k in ("weights", "metrics", "runs")
    }
    return {**files, "resume_dir": str(folder / f"{name}-resume")}


# -- datasets ----------------------------------------------------------------------------------


def digits() -> data.Prepared:
    return data.prepare_digits()


def mnist_shaped(n_train: int, n_test: int) -> data.Prepared:
    """The digits resized to 28x28 (MNIST's shape) and repeated to the requested sizes."""
    p = digits()

    def grow(x: np.ndarray, n: int) -> np.ndarray:
        big = np.stack(
            [np.asarray(Image.fromarray(im[0]).resize((28, 28), Image.BILINEAR)) for im in x]
        )
        return np.resize(big, (n, 28, 28))[:, None]

    def labels(y: np.ndarray, n: int) -> np.ndarray:
        return np.resize(y, n)

    return data._finish(
        grow(p.x_train, n_train),
        labels(p.y_train, n_train),
        grow(p.x_test, n_test),
        labels(p.y_test, n_test),
        10,
        {"name": "mnist-shaped"},
    )


def datasets(opts: common.Options) -> dict[str, data.Prepared]:
    n_train, n_test = (2000, 500) if opts.quick else (10000, 2000)
    return {"digits": digits(), "mnist-shaped": mnist_shaped(n_train, n_test)}


def devices() -> list[torch.device]:
    """The CPU, plus the GPU when one is present."""
    found = [torch.device("cpu")]
    if torch.cuda.is_available():
        found.append(torch.device("cuda"))
    return found


# -- (a) the reference: a tutorial loop --------------------------------------------------------


class TutorialImages(Dataset):
    """torchvision-style dataset: one PIL image per item, transformed on access."""

    def __init__(self, x: np.ndarray, y: np.ndarray, transform) -> None:
        self.x, self.y, self.transform = x, y, transform

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        im = self.x[i]
        img = Image.fromarray(im[0] if im.shape[0] == 1 else im.transpose(1, 2, 0))
        return self.transform(img), int(self.y[i])


def tutorial_train(
    family: str, arch: dict, p: data.Prepared, train: dict, seed: int, dev: torch.device
) -> float:
    """The PyTorch-tutorial loop: ToTensor/Normalize transforms and DataLoaders.

    It computes what weightzoo's loop records: loss and accuracy on both splits before
    training, on the test split after every epoch, on the training split at the end.
    """
    tf = transforms.Compose(
        [transforms.ToTensor(), transforms.Normalize(p.mean.tolist(), p.std.tolist())]
    )
    g = torch.Generator().manual_seed(seed)
    train_set = TutorialImages(p.x_train, p.y_train, tf)
    train_loader = DataLoader(train_set, batch_size=train["batch_size"], shuffle=True, generator=g)
    eval_loaders = {
        "train": DataLoader(train_set, batch_size=512),
        "test": DataLoader(TutorialImages(p.x_test, p.y_test, tf), batch_size=512),
    }
    torch.manual_seed(seed)
    model = build_model(family, arch, tuple(p.x_train.shape[1:]), p.n_classes).to(dev)
    opt = training.make_optimizer(list(model.parameters()), training.Recipe.from_config(train))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, train["epochs"])

    @torch.no_grad()
    def evaluate(split: str) -> tuple[float, float]:
        model.eval()
        loss, correct, n = 0.0, 0, 0
        for xb, yb in eval_loaders[split]:
            x, y = xb.to(dev), yb.to(dev)
            logits = model(x)
            loss += F.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
            n += len(y)
        return loss / n, correct / n

    evaluate("train"), evaluate("test")
    for _ in range(train["epochs"]):
        model.train()
        for xb, yb in train_loader:
            x, y = xb.to(dev), yb.to(dev)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
        acc = evaluate("test")[1]
    evaluate("train")
    common.sync(dev)
    return acc


def compute_alone(
    family: str, arch: dict, td: training.TensorData, train: dict, seed: int, batches: list
) -> None:
    """The model's own work and nothing else: the same steps and evaluations as both loops,
    on batches made before the clock starts; no loop can be faster than this."""
    dev = td.x_train.device
    torch.manual_seed(seed)
    model = build_model(family, arch, td.in_shape, td.n_classes).to(dev)
    opt = training.make_optimizer(list(model.parameters()), training.Recipe.from_config(train))

    @torch.no_grad()
    def evaluate(x: torch.Tensor) -> None:
        for i in range(0, len(x), 512):
            model(x[i : i + 512])

    evaluate(td.x_train), evaluate(td.x_test)
    for epoch_batches in batches:
        for xb, yb in epoch_batches:
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
        evaluate(td.x_test)
    evaluate(td.x_train)
    common.sync(dev)


def premade_batches(td: training.TensorData, train: dict, seed: int) -> list:
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(train["epochs"]):
        perm = torch.randperm(len(td.y_train), generator=g).to(td.x_train.device)
        out.append(
            [
                (td.x_train[idx].clone(), td.y_train[idx].clone())
                for idx in perm.split(train["batch_size"])
            ]
        )
    return out


def weightzoo_train(family, arch, td: training.TensorData, train, seeds, vectorise) -> list:
    """What a training job runs on its block: the seeds' models, then `training.fit`."""
    planned = block(family, arch, train, seeds)
    models = training.seed_models(planned, td.in_shape, td.n_classes, td.device, vectorise)
    results = training.fit(models, td, planned)
    common.sync(td.device)
    return results


def section_throughput(opts: common.Options) -> str:
    torch.set_num_threads(opts.threads)
    epochs = 1 if opts.quick else 2
    rows = []
    for name, p in datasets(opts).items():
        for dev in devices():
            td = training.to_tensors(p, dev)
            for family, arch in ARCHS[name]:
                train = recipe(family, epochs)
                work = epochs * len(p.y_train)
                ref = common.timed(
                    partial(tutorial_train, family, arch, p, train, 0, dev), opts.repeats
                )
                ours = common.timed(
                    partial(weightzoo_train, family, arch, td, train, [0], False), opts.repeats
                )
                floor = common.timed(
                    partial(
                        compute_alone, family, arch, td, train, 0, premade_batches(td, train, 0)
                    ),
                    opts.repeats,
                )
                rows.append(
                    [
                        name,
                        common.device_label(dev),
                        f"{family} {arch}",
                        common.rate(ref, work),
                        common.rate(ours, work),
                        common.ratio(ref, ours),
                        common.rate(floor, work),
                        f"{ref.median / floor.median:.2f}×",
                    ]
                )
        if not torch.cuda.is_available():
            rows.append([name, "GPU", "–", common.NO_GPU, "", "", "", ""])
    return "\n".join(
        [
            "## (a) Training throughput: data path and loop",
            "",
            f"One seed, {epochs} epochs, batch 64, test-set evaluation after every epoch on both "
            f"sides, {opts.threads} thread(s). Reference: the PyTorch-tutorial loop (a "
            "torchvision-style `Dataset` of PIL images with `ToTensor` + `Normalize`, a shuffling "
            "`DataLoader`, `num_workers=0`). weightzoo: `training.seed_models` + `training.fit` with one seed (the "
            "whole split normalised once into a tensor, batches by index tensors). "
            "MNIST-shaped = the digits resized to 28×28 and repeated to "
            f"{len(datasets(opts)['mnist-shaped'].y_train):,} training images. Targets on the CPU: "
            "≥ 3× for the MLP, ≥ 1.5× for the CNN and the ViT. *Model compute alone*: the same "
            "steps and evaluations on batches made before the clock starts — the speed no data "
            "path can beat; the last column is the most any loop could gain over the tutorial "
            "loop.",
            "",
            common.table(
                [
                    "data",
                    "device",
                    "model",
                    "tutorial loop (samples/s)",
                    "weightzoo (samples/s)",
                    "speed-up",
                    "model compute alone (samples/s)",
                    "ceiling: tutorial vs compute alone",
                ],
                rows,
            ),
        ]
    )


# -- (b) seed batching -----------------------------------------------------------------------

SEPARATE = """
import sys, time, json
t0 = time.perf_counter()
import torch
from weightzoo import data, families, training
family, arch, train, seed, threads = json.loads(sys.argv[1])
torch.set_num_threads(threads)
td = training.to_tensors(data.prepare_digits(), torch.device("cpu"))
rule = training.DivergenceRule(max_loss_ratio=0.0, patience=1)
block = training.Block(families.parse(family, arch), training.Recipe(**train), (seed,), (), rule)
models = training.seed_models(block, td.in_shape, td.n_classes, td.device, vectorise=False)
training.fit(models, td, block)
"""


def separate_processes(family: str, arch: dict, train: dict, seeds: list[int], threads: int):
    """Each seed in a fresh interpreter, one after another, as one job per seed would run."""
    env = {**os.environ, "PYTHONPATH": str(common.ROOT / "src")}
    for seed in seeds:
        subprocess.run(
            [sys.executable, "-c", SEPARATE, json.dumps([family, arch, train, seed, threads])],
            check=True,
            env=env,
        )


def seed_rows(opts: common.Options, dev: torch.device, seeds: list[int], epochs: int) -> list:
    """One row per architecture of SEED_ARCHS: stacked vs one after another vs processes."""
    td = training.to_tensors(digits(), dev)
    rows = []
    for family, arch in SEED_ARCHS:
        train = recipe(family, epochs)
        got = {}

        def batched(family=family, arch=arch, train=train, got=got):
            got["vec"] = weightzoo_train(family, arch, td, train, seeds, True)

        def one_by_one(family=family, arch=arch, train=train, got=got):
            got["seq"] = [weightzoo_train(family, arch, td, train, [s], False)[0] for s in seeds]

        vec = common.timed(batched, opts.repeats)
        seq = common.timed(one_by_one, opts.repeats)
        # no target for the ViT, nor on a GPU; each process start costs seconds of imports
        if family == "vit" or dev.type == "cuda" or (opts.quick and family != "mlp"):
            sep_cells = ["not run", "–"]
        else:
            sep = common.timed(
                lambda f=family, a=arch, t=train: separate_processes(f, a, t, seeds, opts.threads),
                opts.repeats,
                warmup=0,
            )
            sep_cells = [sep.fmt(), common.ratio(sep, vec)]
        d_acc = max(
            abs(a.final_test_acc - b.final_test_acc)
            for a, b in zip(got["vec"], got["seq"], strict=True)
        )
        mean_acc = statistics.mean(r.final_test_acc for r in got["vec"])
        rows.append(
            [
                common.device_label(dev),
                f"{family} {arch}",
                vec.fmt(),
                seq.fmt(),
                sep_cells[0],
                common.ratio(seq, vec),
                sep_cells[1],
                f"{mean_acc:.3f} / {d_acc:.3f}",
            ]
        )
    return rows


def section_seed_batching(opts: common.Options) -> str:
    torch.set_num_threads(opts.threads)
    k, epochs = (3, 1) if opts.quick else (10, 10)
    seeds = list(range(k))
    rows = []
    for dev in devices():
        rows += seed_rows(opts, dev, seeds, epochs)
    if not torch.cuda.is_available():
        rows.append(["GPU", "–", common.NO_GPU, "", "", "", "", ""])
    return "\n".join(
        [
            "## (b) Seed-batched training",
            "",
            f"K = {k} seeds of one architecture on digits, {epochs} epochs, with "
            f"{opts.threads} thread(s). *Stacked*: one process trains the K seeds as one stacked "
            "model (`seed_models(..., vectorise=True)`, then `fit`: what a training job does). *One after "
            "another*: the same K seeds, each trained alone, in one process. *Separate "
            "processes*: K fresh interpreters one after another (import, data, one seed each), as "
            "jobs of one seed each would run. Each seed keeps its own initialisation and batch "
            "order; the last column gives the mean final test accuracy of the stacked run and the "
            "largest per-seed difference to the seed trained alone (Adam amplifies float "
            "rounding, so runs agree in what they reach, not bit for bit). Targets for the MLP "
            "and the CNN: ≥ 3× vs one after another, ≥ 10× vs separate processes (not run for "
            "the ViT, which has no target there: each process start costs seconds of imports).",
            "",
            common.table(
                [
                    "device",
                    "model",
                    "stacked",
                    "one after another",
                    "separate processes",
                    "speed-up vs one after another",
                    "speed-up vs separate processes",
                    "test acc / max |Δ|",
                ],
                rows,
            ),
        ]
    )


# -- (c) dump overhead -----------------------------------------------------------------------


def section_dump_overhead(opts: common.Options) -> str:
    torch.set_num_threads(opts.threads)
    epochs = 5 if opts.quick else 30
    dump_epochs = [e for e in DEFAULT_DUMP_EPOCHS if e <= epochs]
    seeds = list(range(5))  # the default config's seeds_per_job
    p = digits()
    td = training.to_tensors(p, torch.device("cpu"))
    out = opts.workdir / "dump-resume"
    data.save_prepared(p, opts.workdir / "digits.npz")
    rows = []
    for family, arch in ARCHS["digits"]:
        train = recipe(family, epochs)
        tags = {"dataset": "digits", "family": family, "arch": "a"}
        raw = {"bytes": 0}
        planned = block(family, arch, train, seeds, dump_epochs)

        def with_dumps(planned=planned, tags=tags, raw=raw):
            # the job's own dump path: tables kept until a checkpoint, then one weights file
            progress = ResumeState(out, {"benchmark": planned.arch.family})
            models = training.seed_models(planned, td.in_shape, td.n_classes, td.device)
            sink = dumps.DumpSink(progress, models.kinds, **tags)
            raw["bytes"] = 0

            def on_dump(epoch, states):
                sink(epoch, states)
                raw["bytes"] += sum(v.numel() for w in states.values() for v in w.values()) * 4

            training.fit(models, td, planned, training.Callbacks(on_dump=on_dump))
            expected = {s: dump_epochs for s in seeds}
            progress.assemble(opts.workdir / "dumped.parquet", expected)
            progress.remove()

        def without(planned=planned):
            models = training.seed_models(planned, td.in_shape, td.n_classes, td.device)
            training.fit(models, td, planned)

        def whole_job(family=family, arch=arch, train=train):
            jobs.train_job(
                data_path=opts.workdir / "digits.npz",
                unit=job_params(family, arch, train, seeds, dump_epochs),
                outputs=job_outputs(opts.workdir, "dumps"),
                device="cpu",
                threads=opts.threads,
                vectorise=True,
            )

        bare = common.timed(without, opts.repeats)
        dumped = common.timed(with_dumps, opts.repeats)
        job = common.timed(whole_job, opts.repeats)
        on_disk = (opts.workdir / "dumps-weights.parquet").stat().st_size
        cost = (dumped.median - bare.median) / bare.median
        job_cost = (job.median - bare.median) / bare.median
        rows.append(
            [
                f"{family} {arch}",
                bare.fmt(),
                dumped.fmt(),
                f"{cost:+.1%}",
                job.fmt(),
                f"{job_cost:+.1%}",
                f"{on_disk / 1e6:.2f} MB / {raw['bytes'] / 1e6:.2f} MB "
                f"({on_disk / raw['bytes']:.2f})",
            ]
        )
    return "\n".join(
        [
            "## (c) Weight-dump overhead",
            "",
            f"{len(seeds)} seeds trained together on digits for {epochs} epochs, dumps at epochs "
            f"{dump_epochs} (the default). *Training*: `training.fit` without dumps. *+ dumps*: the "
            "same, with every dump made and written as a training job does it (`state_dict_table`; "
            "kept until a resume checkpoint — every 10 s — or the end, then written to Parquet: "
            "zstd, byte-stream-split floats). *Whole job*: `jobs.train_job` as Snakemake runs it "
            "(loading the data, dumps, checkpoints, the weights/metrics/runs files). Size: the "
            "job's weights file vs the raw float32 bytes of the same dumps. Target: dumps ≤ 5 % of "
            "training time.",
            "",
            common.table(
                [
                    "model",
                    "training",
                    "+ dumps",
                    "dump cost",
                    "whole job",
                    "job overhead",
                    "weights on disk / raw float32",
                ],
                rows,
            ),
        ]
    )


# -- memory ----------------------------------------------------------------------------------

MEMORY_WORKER = """
import json, sys
from pathlib import Path

def rss_mib(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024

import torch, polars, pyarrow
from weightzoo import jobs, stats, training  # what the jobs import, before the base
mode, kwargs = sys.argv[1], json.loads(sys.argv[2])
base = rss_mib("VmRSS")
if mode == "train":
    jobs.train_job(**kwargs)
else:
    jobs.stats_job(**kwargs)
print(json.dumps({"base": base, "peak": rss_mib("VmHWM")}))
"""


def measure_job(mode: str, kwargs: dict) -> dict:
    env = {**os.environ, "PYTHONPATH": str(common.ROOT / "src")}
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_WORKER, mode, json.dumps(kwargs)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def train_kwargs(
    path: Path, name: str, family: str, arch: dict, train: dict, k: int, opts: common.Options
) -> dict:
    dump_epochs = sorted({0, 1, train["epochs"]})
    return {
        "data_path": str(path),
        "unit": job_params(family, arch, train, list(range(k)), dump_epochs),
        "outputs": job_outputs(opts.workdir, f"mem-{name}"),
        "device": "cpu",
        "threads": opts.threads,
        "vectorise": True,
    }


def section_memory(opts: common.Options) -> str:
    n_train, n_test = (2000, 500) if opts.quick else (60000, 10000)
    cases = [
        ("digits", digits(), "cnn", {"blocks": 3, "channels": 16}, 5, 30),
        ("mnist-shaped", mnist_shaped(n_train, n_test), "mlp", {"depth": 2, "width": 256}, 10, 1),
    ]
    rows, stat_rows = [], []
    for name, p, family, arch, k, epochs in cases:
        path, tiny_path = opts.workdir / f"{name}.npz", opts.workdir / f"{name}-tiny.npz"
        data.save_prepared(p, path)
        tiny = data._finish(
            p.x_train[:64], p.y_train[:64], p.x_test[:64], p.y_test[:64], 10, {"name": "tiny"}
        )
        data.save_prepared(tiny, tiny_path)
        train = recipe(family, epochs)
        # the fixed cost: the same job on 64 images with one seed (interpreter, libraries,
        # kernels touched once); what the real job adds beyond it is its data and models
        fixed = measure_job(
            "train", train_kwargs(tiny_path, name, family, arch, {**train, "epochs": 1}, 1, opts)
        )["peak"]
        kwargs = train_kwargs(path, name, family, arch, train, k, opts)
        peak = measure_job("train", kwargs)["peak"]
        model = build_model(family, arch, tuple(p.x_train.shape[1:]), p.n_classes)
        n_params = count_params(model)
        pixels = int(np.prod(p.x_train.shape[1:]))
        dataset_b = (len(p.y_train) + len(p.y_test)) * (pixels * 4 + 8)
        models_b = k * n_params * 4 * 4  # weights, gradients, Adam's two moments
        batch_b = k * train["batch_size"] * pixels * 4
        estimate = (dataset_b + models_b + batch_b) / 2**20
        rows.append(
            [
                f"{name} ({len(p.y_train):,} + {len(p.y_test):,} images)",
                f"{family} {arch} × {k} seeds, {epochs} epoch(s)",
                f"{dataset_b / 2**20:.1f} + {models_b / 2**20:.1f} + "
                f"{batch_b / 2**20:.1f} = {estimate:.1f} MiB",
                f"{peak:.0f} MiB",
                f"{fixed:.0f} MiB",
                f"{peak - fixed:.1f} MiB",
                f"{(peak - fixed) / estimate:.2f}",
            ]
        )
        weights = Path(kwargs["outputs"]["weights_out"])
        meta = pq.ParquetFile(weights).metadata
        sizes = [meta.row_group(i).total_byte_size for i in range(meta.num_row_groups)]
        stats_job = {
            "weights_path": str(weights),
            "family": family,
            "in_shape": list(p.x_train.shape[1:]),
            "hist": CONFIG["analysis"]["hist"],
            "spectral": CONFIG["analysis"]["spectral"],
            "stats_out": str(opts.workdir / f"mem-{name}-stats.parquet"),
            "maps_out": str(opts.workdir / f"mem-{name}-maps.parquet"),
        }
        smem = measure_job("stats", stats_job)
        stat_rows.append(
            [
                f"{family} {arch} × {k} seeds, {len(sizes)} dumps",
                f"{weights.stat().st_size / 2**20:.1f} MiB",
                f"{sum(sizes) / 2**20:.1f} MiB",
                f"{max(sizes) / 2**20:.2f} MiB",
                f"{smem['base']:.0f} MiB",
                f"{smem['peak'] - smem['base']:.1f} MiB",
            ]
        )
    paper_rows = [_paper_stats_row(opts, *case) for case in PAPER_LARGEST]
    return "\n".join(
        [
            "## Memory",
            "",
            "Peak resident memory (VmHWM) of one training job (`jobs.train_job` in a fresh "
            "process) against the issue's bound: within 2× of (dataset tensors + K models' "
            "weights, gradients and Adam moments + one batch). A CPU process that has imported "
            "and used torch already holds several hundred MiB of libraries and kernels before any "
            "data, so the bound is checked on what the job adds beyond that *fixed cost*, measured "
            "as the peak of the same job on 64 images with one seed.",
            "",
            common.table(
                [
                    "data",
                    "job",
                    "estimate: data + models + batch",
                    "peak",
                    "fixed cost",
                    "peak − fixed",
                    "ratio to estimate",
                ],
                rows,
            ),
            "",
            "Statistics jobs (`jobs.stats_job`) read the weights file a few row groups (dumps) at "
            "a time, up to `stats.BATCH_VALUES` weights; *grown* is what a job adds beyond the "
            "process after its imports (*base*), next to the size of its file:",
            "",
            common.table(
                ["weights file", "on disk", "uncompressed", "largest dump", "base", "grown"],
                stat_rows,
            ),
            "",
            "The largest architectures of `config/paper.yaml` (MNIST-shaped input), their "
            "statistics job with the heavy-tail fits on (`analysis.spectral` of "
            "config/config.yaml): a weights file written as a training job writes it, "
            f"{len(PAPER_SEEDS)} seeds × the paper's dump epochs {PAPER_EPOCHS} (each dump the "
            "initial weights plus noise, `bench_stats._write_weights_file`). The job reads a "
            "few dumps at a time, so its memory follows the largest dump, not the seeds or "
            "epochs in the file:",
            "",
            common.table(
                [
                    "architecture",
                    "parameters",
                    "dumps",
                    "on disk",
                    "largest dump",
                    "job s",
                    "base",
                    "grown",
                    "peak",
                ],
                paper_rows,
            ),
        ]
    )


# the largest architecture of each family in config/paper.yaml
PAPER_LARGEST = (
    ("mlp", {"depth": 4, "width": 1000, "activation": "relu"}),
    ("cnn", {"blocks": 4, "channels": 32}),
    ("vit", {"patch": 4, "depth": 2, "heads": 16, "embed": 64}),
)
PAPER_SEEDS = (0, 1)
PAPER_EPOCHS = [0, 1, 2, 5, 10, 20, 30]


def _paper_stats_row(opts: common.Options, family: str, arch: dict) -> list[str]:
    """Peak memory and time of the statistics job of one of paper.yaml's largest models."""
    import time

    import bench_stats

    torch.manual_seed(0)
    model = build_model(family, arch, bench_stats.MNIST_SHAPE, data.N_CLASSES).eval()
    init = {k: v.detach().clone() for k, v in model.state_dict().items()}
    label = families.parse(family, arch).id
    case = bench_stats.Case(label, family, model, bench_stats.MNIST_SHAPE, init, 1, "")
    weights = opts.workdir / f"paper-{label}.parquet"
    bench_stats._write_weights_file(case, weights, list(PAPER_SEEDS), PAPER_EPOCHS)
    meta = pq.ParquetFile(weights).metadata
    sizes = [meta.row_group(i).total_byte_size for i in range(meta.num_row_groups)]
    stats_job = {
        "weights_path": str(weights),
        "family": family,
        "in_shape": list(bench_stats.MNIST_SHAPE),
        "hist": CONFIG["analysis"]["hist"],
        "spectral": CONFIG["analysis"]["spectral"],
        "stats_out": str(opts.workdir / f"paper-{label}-stats.parquet"),
        "maps_out": str(opts.workdir / f"paper-{label}-maps.parquet"),
    }
    started = time.perf_counter()
    mem = measure_job("stats", stats_job)
    seconds = time.perf_counter() - started
    size = weights.stat().st_size
    weights.unlink()
    return [
        f"`{label}`",
        f"{count_params(model):,}",
        f"{len(sizes)}",
        f"{size / 2**20:.0f} MiB",
        f"{max(sizes) / 2**20:.1f} MiB",
        f"{seconds:.0f}",
        f"{mem['base']:.0f} MiB",
        f"{mem['peak'] - mem['base']:.0f} MiB",
        f"{mem['peak']:.0f} MiB",
    ]
