"""Small zoos written in the five formats weightzoo imports: for the tests, the benchmark and
the worked examples of docs/imports.md.

Each writer lays its files out as the public zoo (or a plain PyTorch user) does
(docs/imports.md says where each layout comes from); the networks are tiny and their
accuracies made up, a smooth function of size, hyperparameters and epoch, so that an
analysis of them has something to find. Nothing here is read by the workflow itself.
"""

from __future__ import annotations

import csv
import gzip
import json
import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np

# --------------------------------------------------------------------------------------------
# Made-up training: a network's states by epoch and their accuracies
# --------------------------------------------------------------------------------------------


def trajectory(state: dict, epochs: Iterable[int], seed: int, step: float = 0.02) -> dict:
    """{epoch: state}: `state` at epoch 0, then a seeded random walk of its values."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    out, current, last = {}, {k: v.clone() for k, v in state.items()}, 0
    for epoch in sorted(epochs):
        for _ in range(epoch - last):
            for v in current.values():
                v.add_(step * torch.randn(v.shape, generator=gen, dtype=v.dtype))
        out[epoch] = {k: v.clone() for k, v in current.items()}
        last = epoch
    return out


def accuracy(size: float, epoch: int, last: int, seed: int, lr: float = 1e-3) -> float:
    """A made-up test accuracy: grows with log size and training, falls off far from lr 1e-3."""
    rng = np.random.default_rng(seed)
    top = 0.1 + 0.85 / (1 + math.exp(-(math.log2(size) - 6)))
    top *= math.exp(-0.5 * math.log10(lr / 1e-3) ** 2)
    value = 0.1 + (top - 0.1) * (1 - math.exp(-3 * epoch / max(last, 1)))
    return float(np.clip(value + rng.normal(0, 0.01), 0.0, 1.0))


def mlp_states(width: int, seed: int, epochs: Iterable[int], in_shape=(1, 8, 8)) -> dict:
    """A weightzoo MLP (one hidden layer of `width`) on 8x8 images: {epoch: state_dict}."""
    import torch

    from weightzoo.models import build_model

    torch.manual_seed(seed)
    model = build_model("mlp", {"depth": 1, "width": width}, in_shape, 10)
    return trajectory(model.state_dict(), epochs, seed)


# --------------------------------------------------------------------------------------------
# state_dict and safetensors: a folder of files and a runs CSV
# --------------------------------------------------------------------------------------------


def write_listed_zoo(
    folder: str | Path,
    runs: list[dict],
    fmt: str = "state_dict",
) -> Path:
    """Write each run's states ({arch, seed, states: {epoch: state_dict}, lr}) as one file per
    checkpoint (torch.save, or safetensors with fmt="safetensors") and a runs CSV beside them
    (file, arch, seed, epoch, test_acc, train_acc, lr); returns the CSV's path."""
    import torch

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for run in runs:
        last = max(run["states"])
        size = sum(v.numel() for v in run["states"][last].values())
        for epoch, state in run["states"].items():
            name = f"{run['arch']}_s{run['seed']}_e{epoch}"
            if fmt == "safetensors":
                from safetensors.torch import save_file

                file = f"{name}.safetensors"
                save_file({k: v.contiguous() for k, v in state.items()}, str(folder / file))
            else:
                file = f"{name}.pt"
                torch.save(state, folder / file)
            acc = accuracy(size, epoch, last, run["seed"] * 1000 + epoch, run.get("lr", 1e-3))
            rows.append(
                {
                    "file": file,
                    "arch": run["arch"],
                    "seed": run["seed"],
                    "epoch": epoch,
                    "test_acc": round(acc, 4),
                    "train_acc": round(min(1.0, acc + 0.02), 4),
                    "lr": run.get("lr", 1e-3),
                }
            )
    path = folder / "runs.csv"
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def mlp_zoo(widths=(2, 4, 8, 16, 32), seeds=(0, 1, 2), epochs=(0, 1, 3)) -> list[dict]:
    """Runs of weightzoo MLPs of several widths (arch mlp-d1-w<width>), for write_listed_zoo."""
    return [
        {"arch": f"mlp-d1-w{w}", "seed": s, "states": mlp_states(w, 100 * w + s, epochs)}
        for w in widths
        for s in seeds
    ]


# --------------------------------------------------------------------------------------------
# Small CNN Zoo (Unterthiner et al. 2020): weights.npy, metrics.csv.gz, layout.csv
# --------------------------------------------------------------------------------------------

SMALL_CNN_STEPS = (0, 1, 2, 3, 20, 40, 60, 80, 86)  # the release's checkpoints (epochs)
SMALL_CNN_METRICS = ("test_accuracy", "test_loss", "train_accuracy", "train_loss")


def small_cnn_layout(num_layers: int = 3, num_units: int = 16, channels: int = 1,
                     n_classes: int = 10) -> list[tuple[str, tuple[int, ...]]]:  # fmt: skip
    """(Keras variable name, shape) of the zoo's CNN in the order of its flat rows: per layer
    the bias, then the kernel (kh, kw, in, out); 4,970 values for 3 layers of 16 units."""
    out, c = [], channels
    for i in range(num_layers):
        layer = "conv2d" if i == 0 else f"conv2d_{i}"
        out += [(f"sequential/{layer}/bias:0", (num_units,)),
                (f"sequential/{layer}/kernel:0", (3, 3, c, num_units))]  # fmt: skip
        c = num_units
    out += [("sequential/dense/bias:0", (n_classes,)),
            ("sequential/dense/kernel:0", (num_units, n_classes))]  # fmt: skip
    return out


def write_small_cnn_zoo(
    folder: str | Path,
    n_runs: int,
    steps: Iterable[int] = SMALL_CNN_STEPS,
    *,
    seed: int = 0,
    diverged: Iterable[int] = (),
    chunk_runs: int = 500,
) -> Path:
    """A zoo of `n_runs` runs x `steps` checkpoints in the Small CNN Zoo's files: weights.npy
    (one float32 row per run x checkpoint, runs in order, steps ascending), metrics.csv.gz
    (the release's columns: config.* hyperparameters, modeldir, step and the four metrics)
    and layout.csv (varname, start_idx, end_idx, size, shape). Runs in `diverged` have NaN
    weights from their fifth checkpoint on. Written `chunk_runs` runs at a time: memory does
    not grow with the zoo."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    steps = sorted(steps)
    layout = small_cnn_layout()
    n_cols = sum(math.prod(s) for _, s in layout)
    with open(folder / "layout.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["varname", "start_idx", "end_idx", "size", "shape"])
        start = 0
        for name, shape in layout:
            size = math.prod(shape)
            writer.writerow([name, start, start + size, size, str(tuple(shape))])
            start += size
    diverged = set(diverged)
    rows = n_runs * len(steps)
    weights = np.lib.format.open_memmap(folder / "weights.npy", "w+", np.float32, (rows, n_cols))
    with gzip.open(folder / "metrics.csv.gz", "wt", newline="") as f:
        writer = None
        for first in range(0, n_runs, chunk_runs):
            runs = range(first, min(n_runs, first + chunk_runs))
            block, records = _small_cnn_block(runs, steps, n_cols, seed, diverged)
            weights[first * len(steps) : (first + len(runs)) * len(steps)] = block
            weights.flush()
            if writer is None:
                writer = csv.DictWriter(f, fieldnames=list(records[0]))
                writer.writeheader()
            writer.writerows(records)
    del weights
    return folder


def _small_cnn_block(runs, steps, n_cols, seed, diverged):
    """The weight rows and metrics records of some runs of `write_small_cnn_zoo`."""
    rng = np.random.default_rng([seed, runs.start])
    block = np.empty((len(runs) * len(steps), n_cols), np.float32)
    records = []
    for j, run in enumerate(runs):
        hyper = {
            "config.activation": ["relu", "tanh"][rng.integers(2)],
            "config.b_init": "zeros",
            "config.dataset": "mnist",
            "config.dnn_architecture": "cnn",
            "config.dropout": float(rng.choice([0.0, 0.05, 0.2])),
            "config.epochs": 86,
            "config.epochs_between_checkpoints": 20,
            "config.init_std": float(f"{10 ** rng.uniform(-3, -1):.6g}"),
            "config.l2reg": float(f"{10 ** rng.uniform(-8, -2):.6g}"),
            "config.learning_rate": float(f"{10 ** rng.uniform(-4, -1):.6g}"),
            "config.num_layers": 3,
            "config.num_units": 16,
            "config.optimizer": ["adam", "sgd", "rmsprop"][rng.integers(3)],
            "config.random_seed": 42,
            "config.train_fraction": float(rng.choice([0.1, 0.25, 0.5, 1.0])),
            "config.w_init": ["he_normal", "glorot_uniform", "RandomNormal"][rng.integers(3)],
        }
        w0 = rng.normal(0, hyper["config.init_std"], n_cols).astype(np.float32)
        drift = rng.normal(0, 0.05, n_cols).astype(np.float32)
        for k, step in enumerate(steps):
            row = w0 + drift * np.float32(math.sqrt(step / steps[-1]))
            if run in diverged and k >= 4:
                row[:] = np.nan
            block[j * len(steps) + k] = row
            acc = accuracy(
                4970 * (1 + j % 7), step, steps[-1], seed + run, hyper["config.learning_rate"]
            )
            records.append({**hyper, "modeldir": f"/zoo/mnist/run{run:06d}", "step": step,
                            "test_accuracy": acc, "test_loss": 2.3 * (1 - acc),
                            "train_accuracy": min(1.0, acc + 0.01),
                            "train_loss": 2.2 * (1 - acc)})  # fmt: skip
    return block, records


# --------------------------------------------------------------------------------------------
# Model Zoos (Schürholt et al. 2022): ray.tune trial folders
# --------------------------------------------------------------------------------------------


def modelzoo_cnn(channels_in: int = 1, activation: str = "tanh"):
    """The Model Zoos' small CNN (def_net.CNN, dropout 0): its state dict keys are
    module_list.{0,3,6}.* (conv) and module_list.{9,11}.* (linear), as the zoo's loader reads."""
    from torch import nn

    act = {"tanh": nn.Tanh, "relu": nn.ReLU, "sigmoid": nn.Sigmoid, "gelu": nn.GELU}[activation]
    layers = [nn.Conv2d(channels_in, 8, 5), nn.MaxPool2d(2, 2), act(),
              nn.Conv2d(8, 6, 5), nn.MaxPool2d(2, 2), act(),
              nn.Conv2d(6, 4, 2), act(), nn.Flatten(),
              nn.Linear(3 * 3 * 4, 20), act(), nn.Linear(20, 10)]  # fmt: skip
    model = nn.Module()
    model.module_list = nn.ModuleList(layers)
    return model


def write_modelzoos(
    folder: str | Path,
    activations=("tanh", "relu"),
    lrs=(1e-3, 1e-4),
    seeds=(11, 22, 33),
    epochs=(0, 1, 2, 3),
) -> Path:
    """An experiment folder of ray.tune trials as the Model Zoos generators write them: per
    trial params.json (the tune config: model::*, optim::*, training::*, seed), result.json
    (one JSON line per epoch, training_iteration 0 being the untrained test with train
    metrics -999) and checkpoint_0000NN/checkpoints (the state dict) beside its optimizer."""
    import torch

    folder = Path(folder)
    i = 0
    for act in activations:
        for lr in lrs:
            for seed in seeds:
                params = {
                    "model::type": "CNN", "model::channels_in": 1, "model::o_dim": 10,
                    "model::nlin": act, "model::dropout": 0.0,
                    "model::init_type": "kaiming_uniform",
                    "optim::optimizer": "adam", "optim::lr": lr, "optim::wd": 1e-4,
                    "optim::momentum": 0.9, "seed": seed, "training::batchsize": 10,
                    "training::epochs_train": max(epochs), "training::start_epoch": 1,
                    "training::output_epoch": 1, "cuda": False,
                    "dataset::dump": "/zoos/MNIST/dataset.pt",
                }  # fmt: skip
                trial = folder / f"NN_tune_trainable_{i:05d}_{i}_nlin={act},lr={lr},seed={seed}"
                trial.mkdir(parents=True, exist_ok=True)
                (trial / "params.json").write_text(json.dumps(params, indent=2))
                torch.manual_seed(seed)
                model = modelzoo_cnn(activation=act)
                states = trajectory(model.state_dict(), epochs, seed)
                size = sum(v.numel() for v in states[0].values()) * (2 if act == "tanh" else 1)
                lines = []
                for epoch, state in states.items():
                    ckpt = trial / f"checkpoint_{epoch:06d}"
                    ckpt.mkdir(exist_ok=True)
                    torch.save(state, ckpt / "checkpoints")
                    torch.save({"state": {}, "param_groups": []}, ckpt / "optimizer")
                    acc = accuracy(size, epoch, max(epochs), seed * 100 + epoch, lr * 10)
                    trained = epoch > 0
                    lines.append(json.dumps({
                        "train_loss": 2.3 * (1 - acc) if trained else -999,
                        "train_acc": min(1.0, acc + 0.02) if trained else -999,
                        "test_loss": 2.3 * (1 - acc), "test_acc": acc,
                        "training_iteration": epoch, "trial_id": f"{i:05d}",
                        "time_this_iter_s": 1.0,
                    }))  # fmt: skip
                (trial / "result.json").write_text("\n".join(lines) + "\n")
                i += 1
    return folder


# --------------------------------------------------------------------------------------------
# CNN Wild Park (Kofinas et al. 2024): trial folders of checkpoint.pt dicts
# --------------------------------------------------------------------------------------------


def park_cnn(channels: list[int], kernels: list[int], n_classes: int = 10):
    """The Wild Park's CNN (cnn_sampler.CNN): convolutions `layers.i`, global average pool and
    a linear head `fc`."""
    from torch import nn

    model = nn.Module()
    model.layers = nn.ModuleList(
        nn.Conv2d(a, b, k, padding=k // 2)
        for a, b, k in zip(channels[:-1], channels[1:], kernels, strict=True)
    )
    model.fc = nn.Linear(channels[-1], n_classes)
    return model


def write_cnn_wild_park(folder: str | Path, n_trials: int = 6, epochs=(10, 20, 30)) -> Path:
    """`cifar10_zooV2/<trial>/checkpoint_0000NN/checkpoint.pt` as the park's trainer saves
    them: a dict of the state dict (`model`), the optimizer's, the model `config` (n_layers,
    channels, kernel_size, stride, padding, residual, activation; a plain dict here) and
    ray's state (`iteration`, `last_result` with test/acc and test/loss, ...). Each trial
    draws its own architecture; checkpoints every 10 epochs, none at the initialisation."""
    import torch

    rng = np.random.default_rng(7)
    root = Path(folder) / "cifar10_zooV2"
    for t in range(n_trials):
        n_layers = int(rng.integers(2, 4))
        channels = [3] + [int(rng.choice([4, 8, 16])) for _ in range(n_layers)]
        kernels = [int(rng.choice([3, 5])) for _ in range(n_layers)]
        config = {"n_layers": n_layers, "n_classes": 10, "channels": channels,
                  "kernel_size": kernels, "stride": [1] * n_layers,
                  "padding": [k // 2 for k in kernels], "residual": [-1] * n_layers,
                  "activation": [str(rng.choice(["relu", "gelu", "tanh"]))] * n_layers}  # fmt: skip
        torch.manual_seed(t)
        model = park_cnn(channels, kernels)
        states = trajectory(model.state_dict(), [0, *epochs], t)
        size = sum(v.numel() for v in states[0].values())
        trial = root / f"NN_tune_trainable_{t:05d}"
        for epoch in epochs:
            acc = accuracy(size, epoch, max(epochs), t * 100 + epoch)
            ckpt = trial / f"checkpoint_{epoch:06d}"
            ckpt.mkdir(parents=True, exist_ok=True)
            torch.save(
                {
                    "model": states[epoch],
                    "optimizer": {"state": {}, "param_groups": [{"lr": 1e-3, "params": []}]},
                    "config": config,
                    "iteration": epoch,
                    "timesteps_total": None,
                    "time_total": float(epoch),
                    "episodes_total": None,
                    "last_result": {
                        "test/acc": acc,
                        "test/loss": 2.3 * (1 - acc),
                        "training_iteration": epoch,
                    },
                    "ray_version": "2.9.0",
                },
                ckpt / "checkpoint.pt",
            )
    return Path(folder)
