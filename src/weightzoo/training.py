"""Training: whole datasets as tensors, index-tensor batches, a job's seeds side by side.

The data path follows airbench: the prepared uint8 images are normalised once into one float
tensor on the device, and batches are slices of it taken with seeded permutations, so there
is no per-sample Python and no DataLoader. The seeds of a job train together as one
stacked model (parameters stacked on a seed axis, batched matrix products and grouped
convolutions), which turns K tiny kernels into one. Each seed owns its model-initialisation
RNG and its batch-order generator, so its run is the one it would have alone, up to float
rounding.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import stack_module_state

from weightzoo.data import Prepared
from weightzoo.models import build_model, count_params

logger = logging.getLogger(__name__)

EVAL_BATCH = 512  # per seed, fixed so that metrics do not depend on how many seeds train together


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

    def norm(x: np.ndarray) -> torch.Tensor:  # in place: one float copy of the images
        return torch.from_numpy(x).float().div_(255).sub_(mean).div_(std).to(device)

    def labels(y: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(y.astype(np.int64)).to(device)

    return TensorData(norm(p.x_train), labels(p.y_train), norm(p.x_test), labels(p.y_test),
                      int(p.n_classes))  # fmt: skip


def make_optimizer(params: list[torch.Tensor], train: dict) -> torch.optim.Optimizer:
    """The configured optimizer; all three update element by element, so one optimizer over
    K seeds' (stacked) parameters updates each seed exactly as its own optimizer would."""
    lr, wd = train["lr"], train["weight_decay"]
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


class SeedModels:
    """K models of one architecture, one per seed, trained side by side.

    Vectorised (the default for K > 1), the K models are one stacked model: their parameters
    are stacked along a leading seed axis (torch.func.stack_module_state) and each model
    family's `forward_stacked` computes all K at once, so every layer is one batched kernel
    instead of K tiny ones. Looped, each seed keeps its own nn.Module and the forward pass
    runs them one after another, bit for bit like training each seed alone. Either way each
    seed's initialisation comes from `torch.manual_seed(seed)` alone, and inputs and outputs
    carry the seed axis first: (K, B, C, H, W) -> (K, B, n_classes).
    """

    def __init__(self, family: str, arch: dict, in_shape, n_classes: int, seeds: list[int],
                 device: torch.device, vectorise: bool = True) -> None:  # fmt: skip
        models = []
        for seed in seeds:
            torch.manual_seed(seed)
            models.append(build_model(family, arch, in_shape, n_classes).to(device))
        self.seeds = list(seeds)
        self.n_params = count_params(models[0])
        self.vectorised = vectorise and len(seeds) > 1
        if self.vectorised:
            stacked, _ = stack_module_state(models)
            self.params = {k: v.detach().requires_grad_() for k, v in stacked.items()}
            self.structure = models[0].to("meta")  # layer settings only; no weights
        else:
            self.models = models

    def parameters(self) -> list[torch.Tensor]:
        if self.vectorised:
            return list(self.params.values())
        return [p for m in self.models for p in m.parameters()]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Each seed's own batch: x is (K, B, ...)."""
        if self.vectorised:
            return self.structure.forward_stacked(self.params, x)
        return torch.stack([m(xk) for m, xk in zip(self.models, x, strict=True)])

    def shared(self, x: torch.Tensor) -> torch.Tensor:
        """The same batch for every seed: x is (B, ...)."""
        if self.vectorised:
            return self.structure.forward_stacked(self.params, x.expand(len(self.seeds), *x.shape))
        return torch.stack([m(x) for m in self.models])

    def seed_state(self, k: int) -> dict[str, torch.Tensor]:
        """The k-th seed's state_dict (views, not copies)."""
        if self.vectorised:
            return {name: p[k].detach() for name, p in self.params.items()}
        return {name: p.detach() for name, p in self.models[k].state_dict().items()}

    def snapshot(self) -> dict[str, torch.Tensor]:
        """A copy of every seed's weights, stacked: {name: (K, ...)}."""
        if self.vectorised:
            return {name: p.detach().clone() for name, p in self.params.items()}
        states = [m.state_dict() for m in self.models]
        return {name: torch.stack([s[name] for s in states]) for name in states[0]}

    @torch.no_grad()
    def load(self, snapshot: dict[str, torch.Tensor]) -> None:
        if self.vectorised:
            for name, p in self.params.items():
                p.copy_(snapshot[name])
            return
        for k, model in enumerate(self.models):
            for name, target in model.state_dict().items():
                target.copy_(snapshot[name][k])


@torch.inference_mode()
def evaluate(models: SeedModels, x: torch.Tensor, y: torch.Tensor) -> tuple[list, list]:
    """Every seed's mean cross-entropy and accuracy over a whole split, in fixed-size chunks."""
    k = len(models.seeds)
    loss, correct = torch.zeros(k, device=x.device), torch.zeros(k, device=x.device)
    for i in range(0, len(x), EVAL_BATCH):
        logits = models.shared(x[i : i + EVAL_BATCH])  # (K, b, n_classes)
        yb = y[i : i + EVAL_BATCH].expand(k, -1)
        loss += F.cross_entropy(logits.transpose(1, 2), yb, reduction="none").sum(1)
        correct += (logits.argmax(2) == yb).sum(1)
    return (loss / len(x)).tolist(), (correct / len(x)).tolist()


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
    wall_time_s: float  # of the whole block of seeds trained together
    seeds_in_block: int


def train_seeds(
    family: str,
    arch: dict,
    data: TensorData,
    train: dict,
    seeds: list[int],
    dump_epochs: list[int],
    on_dump: Callable[[int, dict[int, dict[str, torch.Tensor]]], None],
    on_epoch: Callable[[dict], None],
    on_checkpoint: Callable[[dict], None] | None = None,
    resume: dict | None = None,
    vectorise: bool = True,
    checkpoint_every_s: float = 0.0,
) -> list[SeedResult]:
    """Train `seeds` of one architecture together; on_dump(epoch, {seed: state}), on_epoch(row).

    Each seed has its own initialisation and its own batch order (a generator seeded with
    the seed), so its run is the one it would have alone; vectorised, it agrees with that
    run to float rounding. A seed whose epoch loss becomes NaN or infinite stops with status
    'diverged' and its last finite state is dumped as its final epoch; the others go on.
    After an epoch, once `checkpoint_every_s` have passed since the last checkpoint (0: after
    every epoch), on_checkpoint gets everything needed to continue; passing that back as
    `resume` continues after that epoch and ends with bit-identical weights.
    """
    t0 = time.perf_counter()
    dev, k_seeds = data.x_train.device, len(seeds)
    models = SeedModels(family, arch, data.in_shape, data.n_classes, seeds, dev, vectorise)
    opt = make_optimizer(models.parameters(), train)
    orders = [torch.Generator().manual_seed(s) for s in seeds]  # independent of the init RNG
    n, bs = len(data.x_train), train["batch_size"]
    history: list[list[dict]] = [[] for _ in seeds]
    status, diverged_epoch = ["ok"] * k_seeds, [None] * k_seeds

    def record(epoch: int, train_loss: list, train_acc: list, lr: float, which) -> None:
        test_loss, test_acc = evaluate(models, data.x_test, data.y_test)
        for k in which:
            row = {"seed": seeds[k], "epoch": epoch, "train_loss": train_loss[k],
                   "train_acc": train_acc[k], "test_loss": test_loss[k], "test_acc": test_acc[k],
                   "lr": lr, "wall_time_s": time.perf_counter() - t0}  # fmt: skip
            on_epoch(row)
            if math.isfinite(train_loss[k]):
                history[k].append(row)

    last_checkpoint = time.perf_counter()

    def checkpoint(epoch: int) -> None:
        nonlocal last_checkpoint
        if (
            on_checkpoint is not None
            and time.perf_counter() - last_checkpoint >= checkpoint_every_s
        ):
            last_checkpoint = time.perf_counter()
            on_checkpoint({"seeds": seeds, "epoch": epoch, "weights": models.snapshot(),
                           "last_good": last_good, "optimizer": opt.state_dict(),
                           "orders": [g.get_state() for g in orders], "history": history,
                           "status": status, "diverged_epoch": diverged_epoch,
                           "elapsed": time.perf_counter() - t0})  # fmt: skip

    if resume is None:
        start = 1
        record(0, *evaluate(models, data.x_train, data.y_train), 0.0, range(k_seeds))
        on_dump(0, {seed: models.seed_state(k) for k, seed in enumerate(seeds)})
        last_good = models.snapshot()
        checkpoint(0)
    else:  # continue after the last completed epoch
        if list(resume["seeds"]) != list(seeds):
            raise ValueError(f"resume state is for seeds {resume['seeds']}, not {seeds}")
        models.load(resume["weights"])
        opt.load_state_dict(resume["optimizer"])
        for g, state in zip(orders, resume["orders"], strict=True):
            g.set_state(state)
        history, last_good = resume["history"], resume["last_good"]
        status, diverged_epoch = list(resume["status"]), list(resume["diverged_epoch"])
        start, t0 = resume["epoch"] + 1, t0 - resume["elapsed"]
        logger.info("seeds %s: resuming after epoch %d", seeds, resume["epoch"])

    for epoch in range(start, train["epochs"] + 1):
        running = [k for k in range(k_seeds) if status[k] == "ok"]
        if not running:
            break
        lr = lr_at(train, epoch)
        for group in opt.param_groups:
            group["lr"] = lr
        perms = torch.stack([torch.randperm(n, generator=g) for g in orders]).to(dev)
        loss_sum, correct = torch.zeros(k_seeds, device=dev), torch.zeros(k_seeds, device=dev)
        for i in range(0, n, bs):
            idx = perms[:, i : i + bs]  # (K, b): each seed's own batch
            xb, yb = data.x_train[idx], data.y_train[idx]
            logits = models(xb)
            # mean loss per seed; their sum gives each seed exactly its own gradient
            losses = F.cross_entropy(logits.transpose(1, 2), yb, reduction="none").mean(1)
            opt.zero_grad(set_to_none=True)
            losses.sum().backward()
            opt.step()
            loss_sum += losses.detach() * idx.shape[1]
            correct += (logits.detach().argmax(2) == yb).sum(1)
        train_loss, train_acc = (loss_sum / n).tolist(), (correct / n).tolist()
        record(epoch, train_loss, train_acc, lr, running)
        finite = [k for k in running if math.isfinite(train_loss[k])]
        lost = {}  # seeds that diverged now: their last finite state ends their dumps
        for k in sorted(set(running) - set(finite)):
            status[k], diverged_epoch[k] = "diverged", epoch
            logger.warning("seed %d diverged at epoch %d (train loss %s)", seeds[k], epoch,
                           train_loss[k])  # fmt: skip
            if epoch - 1 not in dump_epochs:
                lost[seeds[k]] = {name: w[k] for name, w in last_good.items()}
        if lost:
            on_dump(epoch - 1, lost)
        if finite and epoch in dump_epochs:
            on_dump(epoch, {seeds[k]: models.seed_state(k) for k in finite})
        if finite:
            current = models.snapshot()
            for name, w in last_good.items():
                w[finite] = current[name][finite]
        checkpoint(epoch)

    models.load(last_good)  # diverged seeds back to their last finite state
    final_train_loss, final_train_acc = evaluate(models, data.x_train, data.y_train)
    wall = time.perf_counter() - t0
    results = []
    for k, seed in enumerate(seeds):
        best = max(history[k], key=lambda r: r["test_acc"])
        results.append(SeedResult(
            seed=seed, status=status[k], n_params=models.n_params,
            epochs_run=history[k][-1]["epoch"], diverged_epoch=diverged_epoch[k],
            final_train_acc=final_train_acc[k], final_train_loss=final_train_loss[k],
            final_test_acc=history[k][-1]["test_acc"], final_test_loss=history[k][-1]["test_loss"],
            best_test_acc=best["test_acc"], best_epoch=best["epoch"], wall_time_s=wall,
            seeds_in_block=k_seeds,
        ))  # fmt: skip
    return results
