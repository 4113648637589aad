"""Device hygiene: a dump leaves the device in one transfer with the same bits as before,
evaluation takes large chunks on CUDA only, and training steps read nothing back."""

from __future__ import annotations

import sys

import numpy as np
import pyarrow as pa
import pytest
import torch
from conftest import ROOT

from weightzoo import dumps, families, training

sys.path.insert(0, str(ROOT / "benchmarks"))
from gpu_check import HostReads

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
CNN = {"blocks": 2, "channels": 4}
ADAM = training.Recipe(
    optimizer="adam",
    lr=0.003,
    batch_size=64,
    epochs=1,
    weight_decay=0.0,
    momentum=0.9,
    schedule="cosine",
    init_scale=1.0,
    train_fraction=1.0,
)
NEVER = training.DivergenceRule(max_loss_ratio=0.0, patience=1)


def block(family: str, arch: dict, seeds: tuple[int, ...]) -> training.Block:
    return training.Block(families.parse(family, arch), ADAM, seeds, (), NEVER)


def per_tensor_table(state, kinds, **tags) -> pa.Table:
    """state_dict_table as it was: each tensor copied to the host on its own."""
    arrays = [
        state[k].detach().to("cpu", torch.float32).contiguous().numpy().ravel() for k in state
    ]
    sizes = np.array([a.size for a in arrays], dtype=np.int64)
    offsets = pa.array(np.concatenate([[0], np.cumsum(sizes)]))
    values = pa.LargeListArray.from_arrays(offsets, pa.array(np.concatenate(arrays)))
    n = len(arrays)
    return pa.table(
        {
            "dataset": [tags["dataset"]] * n,
            "family": [tags["family"]] * n,
            "arch": [tags["arch"]] * n,
            "setting": [tags.get("setting", "default")] * n,
            "seed": pa.array([tags["seed"]] * n, pa.int32()),
            "epoch": pa.array([tags["epoch"]] * n, pa.int32()),
            "tensor": list(state),
            "kind": [kinds[k][0] for k in state],
            "layer": [kinds[k][1] for k in state],
            "numel": pa.array(sizes),
            "shape": pa.array([list(state[k].shape) for k in state], pa.list_(pa.int32())),
            "values": values.cast(pa.list_(pa.float32())),
        },
        schema=dumps.WEIGHTS_SCHEMA,
    )


class Store:
    def __init__(self) -> None:
        self.dumps = []

    def add_dumps(self, epoch, tables) -> None:
        self.dumps.append((epoch, tables))


def trained_block(digits, device: str) -> training.Seeds:
    data = training.to_tensors(digits, torch.device(device))
    trained = block("cnn", CNN, (3, 4, 5))
    models = training.seed_models(trained, data.in_shape, 10, torch.device(device))
    training.fit(models, data, trained)
    return models


@pytest.mark.parametrize("device", DEVICES)
def test_dump_rows_are_bit_identical_to_per_tensor_copies(digits, device):
    models = trained_block(digits, device)
    tags = {"dataset": "digits", "family": "cnn", "arch": "cnn-b2-c4", "epoch": 1}
    odd = {  # a transposed view, float64, a scalar and an empty tensor
        "t": torch.randn(3, 5, device=device).T,
        "f64": torch.randn(4, dtype=torch.float64, device=device),
        "scalar": torch.tensor(1.5, device=device),
        "empty": torch.zeros(0, 2, device=device),
    }
    for k, seed in enumerate(models.seeds):
        state = models.seed_state(k)
        new = dumps.state_dict_table(state, models.kinds, seed=seed, **tags)
        assert new.equals(per_tensor_table(state, models.kinds, seed=seed, **tags))
    kinds = {k: ("weight", "") for k in odd}
    assert dumps.state_dict_table(odd, kinds, seed=0, **tags).equals(
        per_tensor_table(odd, kinds, seed=0, **tags)
    )


class HostCopies(torch.overrides.TorchFunctionMode):
    """Records (device, numel) of every tensor copied to the host with .cpu() or .to()."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name, targets = getattr(func, "__name__", ""), [*args[1:], *(kwargs or {}).values()]
        if name == "cpu" or (name == "to" and any(str(t) == "cpu" for t in targets)):
            self.calls.append((args[0].device.type, args[0].numel()))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("device", DEVICES)
def test_a_block_dump_leaves_the_device_in_one_transfer(digits, device):
    models = trained_block(digits, device)
    store = Store()
    sink = dumps.DumpSink(store, models.kinds, dataset="digits", family="cnn", arch="a")
    states = {seed: models.seed_state(k) for k, seed in enumerate(models.seeds)}
    with HostCopies() as copies:
        sink(2, states)
    ((epoch, tables),) = store.dumps
    assert epoch == 2 and [t["seed"][0].as_py() for t in tables] == [3, 4, 5]
    # the whole block (3 seeds) in one copy; each seed's table then reads host memory
    n = models.n_params
    assert copies.calls == [(device, 3 * n), ("cpu", n), ("cpu", n), ("cpu", n)]
    for k, table in enumerate(tables):
        tags = {"dataset": "digits", "family": "cnn", "arch": "a", "epoch": 2}
        state = models.seed_state(k)
        assert table.equals(per_tensor_table(state, models.kinds, seed=models.seeds[k], **tags))


def test_evaluation_chunks_stay_512_per_seed_on_the_cpu_and_grow_on_cuda():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert [training.eval_batch(cpu, k) for k in (1, 10, 30)] == [512] * 3
    assert [training.eval_batch(cuda, k) for k in (1, 10, 30, 100)] == [16384, 1638, 546, 512]
    assert all(k * training.eval_batch(cuda, k) <= training.CUDA_EVAL_ROWS for k in (1, 10, 30))


@pytest.mark.parametrize(
    "family,arch",
    [
        ("mlp", {"depth": 1, "width": 16}),
        ("cnn", CNN),
        ("vit", {"patch": 4, "depth": 1, "heads": 2, "embed": 8}),
    ],
)
def test_training_steps_read_nothing_back_from_the_device(family, arch, digits):
    data = training.to_tensors(digits, torch.device("cpu"))
    models = training.seed_models(block(family, arch, (0, 1)), data.in_shape, 10, data.device)
    opt = training.make_optimizer(models.parameters(), ADAM)
    orders = [torch.Generator().manual_seed(s) for s in models.seeds]
    counts = []
    for n in (320, 1280):  # 5 and 20 steps of 64
        part = training.TensorData(data.x_train[:n], data.y_train[:n], data.x_test, data.y_test, 10)
        training.train_epoch(models, part, opt, orders, 64)
        steps = {id(s["step"]) for s in opt.state.values()}  # Adam's counters: host tensors
        with HostReads(steps) as reads:
            training.train_epoch(models, part, opt, orders, 64)
        counts.append(reads.count)
    assert counts == [2, 2]  # the epoch's losses and accuracies, once, whatever its length
