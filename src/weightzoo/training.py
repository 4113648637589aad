"""Training: whole datasets as tensors, index-tensor batches, one seed at a time.

The data path follows airbench: the prepared uint8 images are normalised once into one float
tensor on the device, and batches are slices of it taken with a seeded permutation, so there
is no per-sample Python and no DataLoader. Each seed owns its model-initialisation RNG and its
batch-order generator, so a seed's result does not depend on which other seeds share its job.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from weightzoo.data import Prepared
from weightzoo.models import build_model, count_params

logger = logging.getLogger(__name__)

EVAL_BATCH = 2048


@dataclass
class TensorData:
    """A prepared dataset as normalised float tensors on one device."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int

    @property
    def in_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])


def select_device(device: str) -> torch.device:
    """'auto' -> CUDA when available, else CPU; 'cuda' without a GPU is an error."""
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device: cuda was requested but torch sees no CUDA device")
    if device == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    # deterministic cuBLAS needs this before the first CUDA call
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    return torch.device("cuda")


def set_determinism(threads: int) -> None:
    """Same seed, same bits: deterministic kernels and a fixed thread count."""
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False


def to_tensors(p: Prepared, device: torch.device) -> TensorData:
    """Normalise each split once with the training split's per-channel mean and std."""
    mean = torch.as_tensor(p.mean, dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.as_tensor(p.std, dtype=torch.float32).view(1, -1, 1, 1)

    def norm(x: np.ndarray) -> torch.Tensor:
        return ((torch.from_numpy(x).float().div_(255) - mean) / std).to(device)

    def labels(y: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(y.astype(np.int64)).to(device)

    return TensorData(norm(p.x_train), labels(p.y_train), norm(p.x_test), labels(p.y_test),
                      int(p.n_classes))  # fmt: skip


def make_optimizer(model: nn.Module, train: dict) -> torch.optim.Optimizer:
    params, lr, wd = model.parameters(), train["lr"], train["weight_decay"]
    if train["optimizer"] == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=train["momentum"], weight_decay=wd)
    if train["optimizer"] == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd)
    if train["optimizer"] == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    raise ValueError(f"unknown optimizer {train['optimizer']!r}")


def lr_at(train: dict, epoch: int) -> float:
    """Learning rate used during `epoch` (1-based): constant, or cosine decay over the run."""
    if train["schedule"] == "constant":
        return train["lr"]
    return train["lr"] * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / train["epochs"]))


@torch.inference_mode()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over a whole split, in large batches."""
    loss, correct = torch.zeros((), device=x.device), torch.zeros((), device=x.device)
    for i in range(0, len(x), EVAL_BATCH):
        logits = model(x[i : i + EVAL_BATCH])
        yb = y[i : i + EVAL_BATCH]
        loss += F.cross_entropy(logits, yb, reduction="sum")
        correct += (logits.argmax(1) == yb).sum()
    return loss.item() / len(x), correct.item() / len(x)


@dataclass
class SeedResult:
    """Outcome of one seed's training run (one row of the runs table, before provenance)."""

    seed: int
    status: str  # ok | diverged
    n_params: int
    epochs_run: int  # last epoch completed with a finite loss
    diverged_epoch: int | None
    final_train_acc: float
    final_train_loss: float
    final_test_acc: float
    final_test_loss: float
    best_test_acc: float
    best_epoch: int
    wall_time_s: float


def train_seed(
    family: str,
    arch: dict,
    data: TensorData,
    train: dict,
    seed: int,
    dump_epochs: list[int],
    on_dump: Callable[[int, dict[str, torch.Tensor], nn.Module], None],
    on_epoch: Callable[[dict], None],
    on_checkpoint: Callable[[dict], None] | None = None,
    resume: dict | None = None,
) -> SeedResult:
    """Train one seed; call on_dump(epoch, state_dict, model) and on_epoch(metrics row).

    A loss that becomes NaN or infinite stops the run with status 'diverged'; the last
    finite state is then dumped as the run's final epoch, so every run ends with a dump.
    After every completed epoch, on_checkpoint gets everything needed to continue (model,
    optimizer and batch-order RNG states, history); passing that back as `resume` continues
    after that epoch and ends with bit-identical weights.
    """
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    model = build_model(family, arch, data.in_shape, data.n_classes).to(data.x_train.device)
    opt = make_optimizer(model, train)
    order = torch.Generator().manual_seed(seed)  # batch order, independent of the init RNG
    n, bs = len(data.x_train), train["batch_size"]

    def checkpoint(epoch: int) -> None:
        if on_checkpoint is not None:
            on_checkpoint({"seed": seed, "epoch": epoch, "model": model.state_dict(),
                           "optimizer": opt.state_dict(), "order": order.get_state(),
                           "history": history, "elapsed": time.perf_counter() - t0})  # fmt: skip

    def record(epoch: int, train_loss: float, train_acc: float, lr: float) -> dict:
        test_loss, test_acc = evaluate(model, data.x_test, data.y_test)
        row = {"seed": seed, "epoch": epoch, "train_loss": train_loss, "train_acc": train_acc,
               "test_loss": test_loss, "test_acc": test_acc, "lr": lr,
               "wall_time_s": time.perf_counter() - t0}  # fmt: skip
        on_epoch(row)
        return row

    if resume is None:
        train_loss, train_acc = evaluate(model, data.x_train, data.y_train)
        history = [record(0, train_loss, train_acc, 0.0)]
        on_dump(0, model.state_dict(), model)
        checkpoint(0)
    else:  # continue after the last completed epoch
        if resume["seed"] != seed:
            raise ValueError(f"resume state is for seed {resume['seed']}, not {seed}")
        model.load_state_dict(resume["model"])
        opt.load_state_dict(resume["optimizer"])
        order.set_state(resume["order"])
        history = list(resume["history"])
        t0 -= resume["elapsed"]
        logger.info("seed %d: resuming after epoch %d", seed, resume["epoch"])
    last_good = copy.deepcopy(model.state_dict())
    status, diverged_epoch = "ok", None
    for epoch in range(history[-1]["epoch"] + 1, train["epochs"] + 1):
        lr = lr_at(train, epoch)
        for group in opt.param_groups:
            group["lr"] = lr
        model.train()
        perm = torch.randperm(n, generator=order).to(data.x_train.device)
        loss_sum = torch.zeros((), device=data.x_train.device)
        correct = torch.zeros((), device=data.x_train.device)
        for i in range(0, n, bs):
            idx = perm[i : i + bs]
            xb, yb = data.x_train[idx], data.y_train[idx]
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.detach() * len(idx)
            correct += (logits.detach().argmax(1) == yb).sum()
        train_loss, train_acc = loss_sum.item() / n, correct.item() / n
        if not math.isfinite(train_loss):
            status, diverged_epoch = "diverged", epoch
            record(epoch, train_loss, train_acc, lr)
            logger.warning("seed %d diverged at epoch %d (train loss %s)", seed, epoch, train_loss)
            break
        history.append(record(epoch, train_loss, train_acc, lr))
        if epoch in dump_epochs:
            on_dump(epoch, model.state_dict(), model)
        last_good = copy.deepcopy(model.state_dict())
        checkpoint(epoch)
    epochs_run = history[-1]["epoch"]
    if status == "diverged":
        model.load_state_dict(last_good)
        if epochs_run not in dump_epochs:
            on_dump(epochs_run, model.state_dict(), model)
    # exact (not running-average) training metrics of the final weights
    final_train_loss, final_train_acc = evaluate(model, data.x_train, data.y_train)
    best = max(history, key=lambda r: r["test_acc"])
    return SeedResult(
        seed=seed, status=status, n_params=count_params(model), epochs_run=epochs_run,
        diverged_epoch=diverged_epoch, final_train_acc=final_train_acc,
        final_train_loss=final_train_loss, final_test_acc=history[-1]["test_acc"],
        final_test_loss=history[-1]["test_loss"], best_test_acc=best["test_acc"],
        best_epoch=best["epoch"], wall_time_s=time.perf_counter() - t0,
    )  # fmt: skip
