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
import platform
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import stack_module_state

import weightzoo
from weightzoo.data import Prepared, training_subset
from weightzoo.families import ArchConfig
from weightzoo.models import count_params, from_config, tensor_kinds

logger = logging.getLogger(__name__)

EVAL_BATCH = 512  # per seed, fixed so that metrics do not depend on how many seeds train together
# On CUDA an evaluation chunk holds up to this many (seed, image) rows, at least EVAL_BATCH per
# seed: a few large launches instead of many small ones, small enough to leave room for the
# ViT's attention matrices. The CPU keeps EVAL_BATCH, so its results stay bit for bit what they
# were; on CUDA a seed's metrics may then differ in their last bits between block sizes.
CUDA_EVAL_ROWS = 16384


def eval_batch(device: torch.device, k: int) -> int:
    """Images per seed in one evaluation chunk of a block of `k` seeds on `device`."""
    return max(EVAL_BATCH, CUDA_EVAL_ROWS // k) if device.type == "cuda" else EVAL_BATCH


@dataclass(frozen=True)
class Recipe:
    """How a cell's seeds are trained (config: families.<family>.train, resolved per cell).
    Every field is required: the defaults live in config/config.yaml and its schema only."""

    optimizer: str  # sgd | adam | adamw
    lr: float
    batch_size: int
    epochs: int
    weight_decay: float
    momentum: float  # sgd only
    schedule: str  # constant | cosine
    init_scale: float  # multiplies PyTorch's default initialisation of every weight matrix
    train_fraction: float  # a fixed, stratified subset of the training split (0 < f <= 1)

    @classmethod
    def from_config(cls, train: Mapping[str, Any]) -> Recipe:
        """The recipe of a validated `train` block (a cell's resolved one)."""
        return cls(**train)


@dataclass(frozen=True)
class DivergenceRule:
    """A seed whose epoch loss stays above `max_loss_ratio` x its initial loss for `patience`
    epochs in a row stops as diverged (config: divergence; ratio 0: only a NaN/inf loss)."""

    max_loss_ratio: float
    patience: int

    @classmethod
    def from_config(cls, divergence: Mapping[str, Any]) -> DivergenceRule:
        return cls(**divergence)


@dataclass(frozen=True)
class Block:
    """A block of seeds of one architecture trained together under one recipe: what
    `seed_models` builds and `fit` trains."""

    arch: ArchConfig
    recipe: Recipe
    seeds: tuple[int, ...]
    dump_epochs: tuple[int, ...]  # besides epoch 0 and each seed's last, always dumped
    divergence: DivergenceRule


def _ignore(*_args) -> None:
    return None


@dataclass(frozen=True)
class Callbacks:
    """What `fit` reports to: on_dump(epoch, {seed: state}) at every dump, on_epoch(row) for
    every metrics row, and on_checkpoint(state) after an epoch once `checkpoint_every_s`
    seconds have passed since the last one (0: every epoch; None: no checkpoints)."""

    on_dump: Callable[[int, dict[int, dict[str, torch.Tensor]]], None] = _ignore
    on_epoch: Callable[[dict], None] = _ignore
    on_checkpoint: Callable[[dict], None] | None = None
    checkpoint_every_s: float = 0.0


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

    @property
    def device(self) -> torch.device:
        return self.x_train.device


class NoDeviceError(ValueError, RuntimeError):
    """The config asks for a device this machine does not have."""


def select_device(device: str) -> torch.device:
    """'auto' -> CUDA when available, else CPU; 'cuda' without a GPU is an error naming the
    key (checked here, on the machine that trains: the planning host may have no GPU)."""
    if device == "cuda" and not torch.cuda.is_available():
        raise NoDeviceError(
            f"device: cuda was requested but torch sees no CUDA device on {platform.node()}; "
            "set device: auto (CUDA when present) or cpu"
        )
    if device == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    # deterministic cuBLAS needs this before the first CUDA call
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    return torch.device("cuda")


def provenance(device: torch.device, threads: int) -> dict:
    """What produced a run: library versions, interpreter, device and threads."""
    dev = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    return {
        "weightzoo_version": weightzoo.__version__,
        "torch_version": str(torch.__version__),
        "python_version": platform.python_version(),
        "device": device.type,
        "device_name": dev or platform.machine(),
        "threads": threads,
        "host": platform.node(),
    }


def set_determinism(threads: int) -> None:
    """Same seed, same bits: deterministic kernels and a fixed thread count.

    `torch.use_deterministic_algorithms` also imports torch._inductor to set its flag for
    torch.compile, which weightzoo never uses: about 1.1 s of every training job's start on
    a CPU. The eager-mode switch it sets is called directly where torch has it.
    """
    torch.set_num_threads(threads)
    eager_switch = getattr(torch._C, "_set_deterministic_algorithms", None)
    if eager_switch is None:
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        eager_switch(True, warn_only=True)
    torch.backends.cudnn.benchmark = False


def to_tensors(p: Prepared, device: torch.device, train_fraction: float = 1.0) -> TensorData:
    """Normalise each split once with the training split's per-channel mean and std (of the
    whole split, so a subset sees the same inputs); `train_fraction` < 1 keeps a fixed,
    stratified subset of the training images (`data.training_subset`)."""
    mean = torch.as_tensor(p.mean, dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.as_tensor(p.std, dtype=torch.float32).view(1, -1, 1, 1)

    def norm(x: np.ndarray) -> torch.Tensor:  # in place: one float copy of the images
        return torch.from_numpy(x).float().div_(255).sub_(mean).div_(std).to(device)

    def labels(y: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(y.astype(np.int64)).to(device)

    keep = training_subset(p.y_train, train_fraction)
    x_train, y_train = (
        (p.x_train, p.y_train) if train_fraction >= 1 else (p.x_train[keep], p.y_train[keep])
    )
    x_train, x_test = norm(x_train), norm(p.x_test)
    return TensorData(x_train, labels(y_train), x_test, labels(p.y_test), int(p.n_classes))


def make_optimizer(params: list[torch.Tensor], recipe: Recipe) -> torch.optim.Optimizer:
    """The configured optimizer; all three update element by element, so one optimizer over
    K seeds' (stacked) parameters updates each seed exactly as its own optimizer would."""
    lr, wd = recipe.lr, recipe.weight_decay
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=recipe.momentum, weight_decay=wd)
    if recipe.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd)
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    raise ValueError(f"unknown optimizer {recipe.optimizer!r}")


def lr_at(recipe: Recipe, epoch: int) -> float:
    """Learning rate used during `epoch` (1-based): constant, or a per-epoch cosine decay
    towards 0, which it reaches just after the last epoch: epoch e of E runs at
    lr * (1 + cos(pi * (e - 1) / E)) / 2, the last one at lr * (1 + cos(pi * (E - 1) / E)) / 2."""
    if recipe.schedule == "constant":
        return recipe.lr
    return recipe.lr * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / recipe.epochs))


class Seeds:
    """K models of one architecture, one per seed, trained side by side; one interface for
    the two ways to run them (StackedSeeds, LoopedSeeds). Inputs and outputs carry the seed
    axis first: (K, B, C, H, W) -> (K, B, n_classes)."""

    def __init__(self, seeds: list[int], models: list[nn.Module]) -> None:
        self.seeds = list(seeds)
        self.n_params = count_params(models[0])
        self.kinds = tensor_kinds(models[0])  # (kind, layer) of every state_dict key

    def parameters(self) -> list[torch.Tensor]:
        raise NotImplementedError

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Each seed's own batch: x is (K, B, ...)."""
        raise NotImplementedError

    def shared(self, x: torch.Tensor) -> torch.Tensor:
        """The same batch for every seed: x is (B, ...)."""
        raise NotImplementedError

    def seed_state(self, k: int) -> dict[str, torch.Tensor]:
        """The k-th seed's state_dict (views, not copies)."""
        raise NotImplementedError

    def snapshot(self) -> dict[str, torch.Tensor]:
        """A copy of every seed's weights, stacked: {name: (K, ...)}."""
        raise NotImplementedError

    def load(self, snapshot: dict[str, torch.Tensor]) -> None:
        raise NotImplementedError


class StackedSeeds(Seeds):
    """The K models as one stacked model: parameters stacked along a leading seed axis
    (torch.func.stack_module_state), and the family's `forward_stacked` computes all K at
    once, so every layer is one batched kernel instead of K tiny ones."""

    def __init__(self, seeds: list[int], models: list[nn.Module]) -> None:
        super().__init__(seeds, models)
        stacked, _ = stack_module_state(models)
        self.params = {k: v.detach().requires_grad_() for k, v in stacked.items()}
        self.structure = models[0].to("meta")  # layer settings only; no weights

    def parameters(self) -> list[torch.Tensor]:
        return list(self.params.values())

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.structure.forward_stacked(self.params, x)

    def shared(self, x: torch.Tensor) -> torch.Tensor:
        return self(x.expand(len(self.seeds), *x.shape))

    def seed_state(self, k: int) -> dict[str, torch.Tensor]:
        return {name: p[k].detach() for name, p in self.params.items()}

    def snapshot(self) -> dict[str, torch.Tensor]:
        return {name: p.detach().clone() for name, p in self.params.items()}

    @torch.no_grad()
    def load(self, snapshot: dict[str, torch.Tensor]) -> None:
        for name, p in self.params.items():
            p.copy_(snapshot[name])


class LoopedSeeds(Seeds):
    """Each seed keeps its own nn.Module and they run one after another, bit for bit like
    training each seed alone."""

    def __init__(self, seeds: list[int], models: list[nn.Module]) -> None:
        super().__init__(seeds, models)
        self.models = models

    def parameters(self) -> list[torch.Tensor]:
        return [p for m in self.models for p in m.parameters()]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(xk) for m, xk in zip(self.models, x, strict=True)])

    def shared(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x) for m in self.models])

    def seed_state(self, k: int) -> dict[str, torch.Tensor]:
        return {name: p.detach() for name, p in self.models[k].state_dict().items()}

    def snapshot(self) -> dict[str, torch.Tensor]:
        states = [m.state_dict() for m in self.models]
        return {name: torch.stack([s[name] for s in states]) for name in states[0]}

    @torch.no_grad()
    def load(self, snapshot: dict[str, torch.Tensor]) -> None:
        for k, model in enumerate(self.models):
            for name, target in model.state_dict().items():
                target.copy_(snapshot[name][k])


def seed_models(
    block: Block,
    in_shape: tuple[int, int, int],
    n_classes: int,
    device: torch.device,
    vectorise: bool = True,
) -> Seeds:
    """One model per seed of `block`, each initialised from `torch.manual_seed(seed)` alone,
    every weight matrix's default initialisation times the recipe's `init_scale`; stacked
    (vectorise, K > 1) or looped."""
    models = []
    for seed in block.seeds:
        torch.manual_seed(seed)
        model = from_config(block.arch, in_shape, n_classes)
        if block.recipe.init_scale != 1.0:
            scale_weights(model, block.recipe.init_scale)
        models.append(model.to(device))
    stacked = vectorise and len(block.seeds) > 1
    return (StackedSeeds if stacked else LoopedSeeds)(list(block.seeds), models)


@torch.inference_mode()
def evaluate(models: Seeds, x: torch.Tensor, y: torch.Tensor) -> tuple[list, list]:
    """Every seed's mean cross-entropy and accuracy over a whole split, in fixed-size chunks."""
    k, step = len(models.seeds), eval_batch(x.device, len(models.seeds))
    loss, correct = torch.zeros(k, device=x.device), torch.zeros(k, device=x.device)
    for i in range(0, len(x), step):
        logits = models.shared(x[i : i + step])  # (K, b, n_classes)
        yb = y[i : i + step].expand(k, -1)
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
    diverged_because: str | None  # "non-finite loss" or "loss above N x initial"
    final_train_acc: float
    final_train_loss: float
    final_test_acc: float
    final_test_loss: float
    best_test_acc: float
    best_epoch: int
    wall_time_s: float  # of the whole block of seeds trained together
    seeds_in_block: int


@torch.no_grad()
def scale_weights(model: nn.Module, factor: float) -> None:
    """Multiply every weight matrix and kernel (kind "weight") of a model by `factor`."""
    kinds = tensor_kinds(model)
    for name, p in model.named_parameters():
        if kinds[name][0] == "weight":
            p.mul_(factor)


def batches(
    data: TensorData, orders: list[torch.Generator], batch_size: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of every seed's own batches, (K, b, ...) images and (K, b) labels: seed k
    draws its order from its own generator, so it sees what it would see alone."""
    n = len(data.x_train)
    perms = torch.stack([torch.randperm(n, generator=g) for g in orders])
    perms = perms.to(data.x_train.device)
    for i in range(0, n, batch_size):
        idx = perms[:, i : i + batch_size]
        yield data.x_train[idx], data.y_train[idx]


def train_epoch(
    models: Seeds,
    data: TensorData,
    opt: torch.optim.Optimizer,
    orders: list[torch.Generator],
    batch_size: int,
) -> tuple[list, list]:
    """One epoch of every seed; its running mean train loss and accuracy."""
    k = len(models.seeds)
    dev = data.x_train.device
    loss_sum, correct = torch.zeros(k, device=dev), torch.zeros(k, device=dev)
    for xb, yb in batches(data, orders, batch_size):
        logits = models(xb)
        # mean loss per seed; their sum gives each seed exactly its own gradient
        losses = F.cross_entropy(logits.transpose(1, 2), yb, reduction="none").mean(1)
        opt.zero_grad(set_to_none=True)
        losses.sum().backward()
        opt.step()
        loss_sum += losses.detach() * yb.shape[1]
        correct += (logits.detach().argmax(2) == yb).sum(1)
    n = len(data.x_train)
    return (loss_sum / n).tolist(), (correct / n).tolist()


@dataclass
class BlockState:
    """Where a block of seeds stands after `epoch`: each seed's metrics rows with a finite
    loss, status and divergence epoch, and its last finite weights (stacked)."""

    seeds: list[int]
    epoch: int = 0
    history: list[list[dict]] = field(default_factory=list)
    status: list[str] = field(default_factory=list)
    diverged_epoch: list[int | None] = field(default_factory=list)
    last_good: dict[str, torch.Tensor] = field(default_factory=dict)
    diverged_because: list[str | None] = field(default_factory=list)
    over: list[int] = field(default_factory=list)  # epochs in a row above the loss limit

    def __post_init__(self) -> None:
        k = len(self.seeds)
        self.history = self.history or [[] for _ in range(k)]
        self.status = self.status or ["ok"] * k
        self.diverged_epoch = self.diverged_epoch or [None] * k
        self.diverged_because = self.diverged_because or [None] * k
        self.over = self.over or [0] * k

    def running(self) -> list[int]:
        return [k for k, s in enumerate(self.status) if s == "ok"]

    def record(self, epoch: int, which, metrics: tuple, lr: float, wall: float) -> list[dict]:
        """The metrics rows of seeds `which` (metrics: train loss, train acc, test loss, test
        acc, a list over all seeds each); rows with a finite loss join their seed's history."""
        names = ("train_loss", "train_acc", "test_loss", "test_acc")
        rows = []
        for k in which:
            row = {"seed": self.seeds[k], "epoch": epoch}
            row |= {name: values[k] for name, values in zip(names, metrics, strict=True)}
            rows.append(row | {"lr": lr, "wall_time_s": wall})
            if math.isfinite(row["train_loss"]):
                self.history[k].append(rows[-1])
        return rows

    def checkpoint(self, models: Seeds, opt, orders, elapsed: float) -> dict:
        """Everything needed to continue, as plain containers (torch.load weights_only)."""
        return {
            "seeds": self.seeds,
            "epoch": self.epoch,
            "weights": models.snapshot(),
            "last_good": self.last_good,
            "optimizer": opt.state_dict(),
            "orders": [g.get_state() for g in orders],
            "history": self.history,
            "status": self.status,
            "diverged_epoch": self.diverged_epoch,
            "diverged_because": self.diverged_because,
            "over": self.over,
            "elapsed": elapsed,
        }

    @classmethod
    def resume(cls, saved: dict, models: Seeds, opt, orders) -> BlockState:
        """The state saved by `checkpoint`, loaded back into the models, optimizer, orders."""
        if list(saved["seeds"]) != models.seeds:
            raise ValueError(f"resume state is for seeds {saved['seeds']}, not {models.seeds}")
        models.load(saved["weights"])
        opt.load_state_dict(saved["optimizer"])
        for g, state in zip(orders, saved["orders"], strict=True):
            g.set_state(state)
        return cls(
            models.seeds,
            saved["epoch"],
            saved["history"],
            list(saved["status"]),
            list(saved["diverged_epoch"]),
            saved["last_good"],
            list(saved.get("diverged_because", [])),
            list(saved.get("over", [])),
        )


def fit(
    models: Seeds,
    data: TensorData,
    block: Block,
    callbacks: Callbacks | None = None,
    resume: dict | None = None,
) -> list[SeedResult]:
    """Train the models of `block` (`seed_models`) on `data`, reporting to `callbacks`.

    A seed whose epoch loss becomes NaN or infinite stops with status 'diverged' and its last
    finite state is dumped as its final epoch; so does one that breaks the block's
    divergence rule (its current, finite state is its final dump); the others go on. A
    checkpoint holds everything needed to continue: passed back as `resume`, training
    continues after its epoch and ends with bit-identical weights.
    """
    t0 = time.perf_counter()
    cb = callbacks or Callbacks()
    recipe = block.recipe
    opt = make_optimizer(models.parameters(), recipe)
    orders = [torch.Generator().manual_seed(s) for s in models.seeds]  # not the init RNG
    saved_at = time.perf_counter()

    def record(epoch: int, train_loss: list, train_acc: list, lr: float, which) -> None:
        test = evaluate(models, data.x_test, data.y_test)
        wall = time.perf_counter() - t0
        for row in state.record(epoch, which, (train_loss, train_acc, *test), lr, wall):
            cb.on_epoch(row)

    def checkpoint() -> None:
        nonlocal saved_at
        if cb.on_checkpoint is not None and time.perf_counter() - saved_at >= cb.checkpoint_every_s:
            saved_at = time.perf_counter()
            cb.on_checkpoint(state.checkpoint(models, opt, orders, time.perf_counter() - t0))

    if resume is None:
        state = BlockState(models.seeds)
        record(0, *evaluate(models, data.x_train, data.y_train), 0.0, range(len(models.seeds)))
        cb.on_dump(0, {seed: models.seed_state(k) for k, seed in enumerate(models.seeds)})
        state.last_good = models.snapshot()
        checkpoint()
    else:  # continue after the last completed epoch
        state = BlockState.resume(resume, models, opt, orders)
        t0 -= resume["elapsed"]
        logger.info("seeds %s: resuming after epoch %d", models.seeds, state.epoch)

    for epoch in range(state.epoch + 1, recipe.epochs + 1):
        if not (running := state.running()):
            break
        lr = lr_at(recipe, epoch)
        for group in opt.param_groups:
            group["lr"] = lr
        train_loss, train_acc = train_epoch(models, data, opt, orders, recipe.batch_size)
        record(epoch, train_loss, train_acc, lr, running)
        state.epoch = epoch
        end_epoch(state, models, running, train_loss, block, cb.on_dump)
        checkpoint()
    return finish(models, data, state, time.perf_counter() - t0)


def end_epoch(
    state: BlockState,
    models: Seeds,
    running: list[int],
    train_loss: list,
    block: Block,
    on_dump: Callable[[int, dict], None],
) -> None:
    """Mark the seeds that diverged in this epoch (non-finite loss: their last finite state
    is their final dump; loss too high for too long: their current state is), dump the others
    at a dump epoch, and keep the finite weights as last good."""
    epoch, seeds, dump_epochs = state.epoch, models.seeds, block.dump_epochs
    finite = [k for k in running if math.isfinite(train_loss[k])]
    lost = {}  # seeds that diverged now: their last finite state ends their dumps
    for k in sorted(set(running) - set(finite)):
        stop(state, k, epoch, "non-finite loss", train_loss[k])
        if epoch - 1 not in dump_epochs:
            lost[seeds[k]] = {name: w[k] for name, w in state.last_good.items()}
    if lost:
        on_dump(epoch - 1, lost)
    if finite and epoch in dump_epochs:
        on_dump(epoch, {seeds[k]: models.seed_state(k) for k in finite})
    exploded = too_high(state, finite, train_loss, block.divergence)
    if exploded and epoch not in dump_epochs:
        on_dump(epoch, {seeds[k]: models.seed_state(k) for k in exploded})
    if finite:
        current = models.snapshot()
        for name, w in state.last_good.items():
            w[finite] = current[name][finite]


def stop(state: BlockState, k: int, epoch: int, because: str, loss: float) -> None:
    """Seed k has diverged at `epoch`."""
    state.status[k], state.diverged_epoch[k], state.diverged_because[k] = "diverged", epoch, because
    seed = state.seeds[k]
    logger.warning("seed %d diverged at epoch %d (%s: train loss %s)", seed, epoch, because, loss)


def too_high(
    state: BlockState, finite: list[int], train_loss: list, rule: DivergenceRule
) -> list[int]:
    """The finite seeds whose loss has been above max_loss_ratio x their initial loss for
    `patience` epochs in a row: they stop as diverged (a ratio of 0 stops none)."""
    ratio, patience = rule.max_loss_ratio, rule.patience
    if not ratio:
        return []
    exploded = []
    for k in finite:
        initial = state.history[k][0]["train_loss"]
        state.over[k] = state.over[k] + 1 if train_loss[k] > ratio * initial else 0
        if state.over[k] >= patience:
            because = f"loss above {ratio:g} x initial for {patience} epochs"
            stop(state, k, state.epoch, because, train_loss[k])
            exploded.append(k)
    return exploded


def finish(models: Seeds, data: TensorData, state: BlockState, wall: float) -> list[SeedResult]:
    """Each seed's result, from its last finite weights (diverged seeds are put back)."""
    models.load(state.last_good)
    final_train_loss, final_train_acc = evaluate(models, data.x_train, data.y_train)
    results = []
    for k, seed in enumerate(models.seeds):
        rows = state.history[k]
        best = max(rows, key=lambda r: r["test_acc"])
        results.append(
            SeedResult(
                seed=seed,
                status=state.status[k],
                n_params=models.n_params,
                epochs_run=rows[-1]["epoch"],
                diverged_epoch=state.diverged_epoch[k],
                diverged_because=state.diverged_because[k],
                final_train_acc=final_train_acc[k],
                final_train_loss=final_train_loss[k],
                final_test_acc=rows[-1]["test_acc"],
                final_test_loss=rows[-1]["test_loss"],
                best_test_acc=best["test_acc"],
                best_epoch=best["epoch"],
                wall_time_s=wall,
                seeds_in_block=len(models.seeds),
            )
        )
    return results
