"""Training: determinism, divergence, weight-dump round trip and sane accuracy on digits."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from weightzoo import dumps, families, jobs, training
from weightzoo.models import build_model

MLP = {"depth": 1, "width": 16, "activation": "relu"}
ADAM = {
    "optimizer": "adam",
    "lr": 0.003,
    "batch_size": 64,
    "epochs": 3,
    "weight_decay": 0.0,
    "momentum": 0.9,
    "schedule": "cosine",
    "init_scale": 1.0,
    "train_fraction": 1.0,
}
NEVER = {"max_loss_ratio": 0.0, "patience": 1}  # only a NaN or infinite loss stops a seed


def job_unit(family: str, arch: dict, train: dict, seeds: list[int], epochs) -> dict:
    """A training job's params, as the workflow passes them (jobs.UNIT_KEYS)."""
    return {
        "dataset": "digits",
        "family": family,
        "arch": families.parse(family, arch).id,
        "arch_params": arch,
        "setting": "default",
        "setting_values": {},
        "train": train,
        "seeds": seeds,
        "dump_epochs": list(epochs),
        "divergence": NEVER,
    }


def run_job(
    tmp_path,
    digits_file,
    *,
    seeds,
    family="mlp",
    arch=MLP,
    train=ADAM,
    epochs=(0, 1, 3),
    **options,
):
    """`jobs.train_job` of one block on digits (options: device, vectorise)."""
    out = {k: tmp_path / f"{k}.parquet" for k in ("weights", "metrics", "runs")}
    runs = jobs.train_job(
        data_path=digits_file,
        unit=job_unit(family, arch, train, seeds, epochs),
        outputs={**{f"{k}_out": v for k, v in out.items()}, "resume_dir": tmp_path / "resume"},
        threads=1,
        **{"device": "cpu", "vectorise": True, **options},
    )
    assert not (tmp_path / "resume").exists()  # removed once the job is complete
    return runs, {k: pq.read_table(v) for k, v in out.items()}


def block(family, arch, train=ADAM, seeds=(0,), dump_epochs=(), divergence=NEVER):
    """What `seed_models` builds and `fit` trains."""
    return training.Block(
        families.parse(family, arch),
        training.Recipe.from_config(train),
        tuple(seeds),
        tuple(dump_epochs),
        training.DivergenceRule.from_config(divergence),
    )


def fit(data, trained: training.Block, vectorise=True, **callbacks):
    """What a training job does with its block: its seeds' models, then `fit`."""
    models = training.seed_models(trained, data.in_shape, data.n_classes, data.device, vectorise)
    return training.fit(models, data, trained, training.Callbacks(**callbacks))


def values_of(table, seed):
    rows = table.filter(table["seed"].to_numpy() == seed).sort_by([("epoch", "ascending")])
    return rows.column("values").combine_chunks().flatten().to_numpy()


def test_same_seed_gives_identical_weights_and_metrics(tmp_path, digits_file):
    _, a = run_job(tmp_path / "a", digits_file, seeds=[3])
    _, b = run_job(tmp_path / "b", digits_file, seeds=[3])
    assert a["weights"].drop(["values"]).equals(b["weights"].drop(["values"]))
    assert np.array_equal(values_of(a["weights"], 3), values_of(b["weights"], 3))
    cols = ["epoch", "train_loss", "train_acc", "test_loss", "test_acc"]
    assert a["metrics"].select(cols).equals(b["metrics"].select(cols))


def test_different_seeds_give_different_initialisations(tmp_path, digits_file):
    _, out = run_job(tmp_path, digits_file, seeds=[0, 1])
    assert not np.array_equal(values_of(out["weights"], 0), values_of(out["weights"], 1))


def test_seed_result_does_not_depend_on_its_job_companions(tmp_path, digits_file):
    # trained side by side, seed 1 gets the same bits whichever seed shares its block ...
    _, a = run_job(tmp_path / "a", digits_file, seeds=[0, 1])
    _, b = run_job(tmp_path / "b", digits_file, seeds=[7, 1])
    assert np.array_equal(values_of(a["weights"], 1), values_of(b["weights"], 1))
    # ... and, looped instead of vectorised, exactly the bits it gets alone
    _, alone = run_job(tmp_path / "alone", digits_file, seeds=[1])
    _, looped = run_job(tmp_path / "looped", digits_file, seeds=[0, 1], vectorise=False)
    assert np.array_equal(values_of(alone["weights"], 1), values_of(looped["weights"], 1))


FAMILIES = [
    ("mlp", MLP),
    ("cnn", {"blocks": 2, "channels": 4, "activation": "relu"}),
    (
        "vit",
        {
            "patch": 4,
            "embed": 8,
            "depth": 2,
            "heads": 2,
            "mlp_ratio": 2.0,
            "pool": "cls",
            "activation": "gelu",
        },
    ),
]


def trained(digits, family, arch, train, seeds, vectorise):
    data = training.to_tensors(digits, torch.device("cpu"))
    kept = {}

    def on_dump(epoch, states):
        for seed, state in states.items():
            kept[seed, epoch] = {k: v.clone() for k, v in state.items()}

    planned = block(family, arch, train, seeds, [0, train["epochs"]])
    return fit(data, planned, vectorise, on_dump=on_dump), kept


@pytest.mark.parametrize("family,arch", FAMILIES)
def test_vectorised_seeds_match_seeds_trained_alone(digits, family, arch):
    seeds = [0, 1, 2]
    sgd = {**ADAM, "optimizer": "sgd", "lr": 0.05, "epochs": 2}
    # SGD: the weights agree to float rounding; Adam (the default): it amplifies rounding where
    # a gradient is ~0 (its step is lr * sign there), so compare what the runs reach instead
    for train, atol in [(sgd, 1e-5), (ADAM, None)]:
        vec, vec_w = trained(digits, family, arch, train, seeds, vectorise=True)
        alone = [trained(digits, family, arch, train, [s], vectorise=False) for s in seeds]
        for k, seed in enumerate(seeds):
            res, weights = alone[k][0][0], alone[k][1]
            for name, w in weights[seed, 0].items():  # the same initialisation, bit for bit
                assert torch.equal(vec_w[seed, 0][name], w)
            if atol is not None:
                for name, w in weights[seed, train["epochs"]].items():
                    torch.testing.assert_close(
                        vec_w[seed, train["epochs"]][name], w, rtol=0, atol=atol
                    )
            assert abs(vec[k].final_test_acc - res.final_test_acc) <= 0.02
            assert vec[k].seeds_in_block == 3 and res.seeds_in_block == 1


def test_a_diverging_seed_does_not_disturb_its_companions(digits):
    train = {**ADAM, "epochs": 3}
    data = training.to_tensors(digits, torch.device("cpu"))
    runs = {}
    for corrupt in (False, True):
        kept = {}

        def on_dump(epoch, states, corrupt=corrupt, kept=kept):
            for seed, state in states.items():
                kept[seed, epoch] = {k: v.clone() for k, v in state.items()}
            if corrupt and epoch == 1:  # seed 0 blows up during epoch 2
                states[0]["head.weight"].fill_(float("nan"))

        runs[corrupt] = (
            fit(data, block("mlp", MLP, train, [0, 1], [0, 1, 3]), on_dump=on_dump),
            kept,
        )
    (clean, clean_w), (hit, hit_w) = runs[False], runs[True]
    assert [r.status for r in clean] == ["ok", "ok"]
    assert [(r.status, r.diverged_epoch, r.epochs_run) for r in hit] == [
        ("diverged", 2, 1),
        ("ok", None, 3),
    ]
    for name, w in clean_w[0, 1].items():  # seed 0's last finite state, dumped intact
        assert torch.equal(hit_w[0, 1][name], w)
    for name, w in clean_w[1, 3].items():  # seed 1: bit for bit as without the divergence
        assert torch.equal(hit_w[1, 3][name], w)
    assert sorted(e for s, e in hit_w if s == 0) == [0, 1]  # seed 0 ends with epoch 1


@pytest.mark.parametrize("family,arch", FAMILIES)
def test_dump_rows_rebuild_a_model_with_identical_predictions(digits, family, arch):
    data = training.to_tensors(digits, torch.device("cpu"))
    _, kept = trained(digits, family, arch, ADAM, [0, 1], vectorise=True)
    torch.manual_seed(123)  # a different init, overwritten by the dump
    model = build_model(family, arch, data.in_shape, data.n_classes)
    kinds = {k: ("weight", "") for k in model.state_dict()}
    for seed in (0, 1):
        table = dumps.state_dict_table(
            kept[seed, 3], kinds, dataset="d", family=family, arch="a", seed=seed, epoch=3
        )
        rebuilt = build_model(family, arch, data.in_shape, data.n_classes)
        rebuilt.load_state_dict(dumps.rows_to_state_dict(table))
        model.load_state_dict(kept[seed, 3])
        assert torch.equal(rebuilt(data.x_test), model(data.x_test))


def test_epoch_zero_and_final_epoch_are_dumped_with_all_tensors(tmp_path, digits_file):
    runs, out = run_job(tmp_path, digits_file, seeds=[0], epochs=(0, 1, 3))
    w = out["weights"]
    assert sorted(set(w["epoch"].to_pylist())) == [0, 1, 3]
    # mlp-d1-w16 on 8x8 digits: hidden.0.weight/bias, head.weight/bias
    assert w.filter(w["epoch"].to_numpy() == 3)["tensor"].to_pylist() == [
        "hidden.0.weight",
        "hidden.0.bias",
        "head.weight",
        "head.bias",
    ]
    assert w.filter(w["epoch"].to_numpy() == 3)["shape"].to_pylist() == [
        [16, 64],
        [16],
        [10, 16],
        [10],
    ]
    assert sum(w.filter(w["epoch"].to_numpy() == 0)["numel"].to_pylist()) == 64 * 16 + 16 + 170
    assert runs["n_params"].to_list() == [1210]
    assert out["metrics"]["epoch"].to_pylist() == [0, 1, 2, 3]


def test_mlp_learns_digits(tmp_path, digits_file):
    train = {**ADAM, "epochs": 10}
    runs, _ = run_job(
        tmp_path, digits_file, seeds=[0], arch={**MLP, "width": 32}, train=train, epochs=(0, 10)
    )
    assert runs["status"].to_list() == ["ok"]
    assert runs["final_test_acc"][0] > 0.9  # a 1-hidden-layer MLP reaches ~95 % on digits
    assert runs["final_train_acc"][0] > 0.9


def test_diverging_run_is_recorded_and_keeps_its_dumps(tmp_path, digits_file):
    sgd = {**ADAM, "optimizer": "sgd", "lr": 1e30, "schedule": "constant", "epochs": 4}
    runs, out = run_job(tmp_path, digits_file, seeds=[0, 1], train=sgd, epochs=(0, 2, 4))
    assert runs["status"].to_list() == ["diverged", "diverged"]
    assert runs["diverged_epoch"].to_list() == [1, 1]
    assert runs["epochs_run"].to_list() == [0, 0]
    w = out["weights"]
    # only the initialisation (= the last finite state) is dumped, and it is finite
    assert sorted(set(w["epoch"].to_pylist())) == [0]
    assert np.isfinite(w.column("values").combine_chunks().flatten().to_numpy()).all()
    metrics = out["metrics"].to_pydict()
    assert metrics["epoch"] == [0, 1, 0, 1]
    assert not math.isfinite(metrics["train_loss"][1])


def test_cosine_schedule_decays_to_zero():
    recipe = training.Recipe.from_config({**ADAM, "lr": 1.0, "epochs": 4})
    decay = [round(training.lr_at(recipe, e), 4) for e in (1, 2, 3, 4)]
    assert decay == [1.0, 0.8536, 0.5, 0.1464]
    assert training.lr_at(dataclasses.replace(recipe, schedule="constant"), 4) == 1.0


def test_cuda_request_without_a_gpu_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(RuntimeError, match="no CUDA device"):
        training.select_device("cuda")
    assert training.select_device("auto").type == "cpu"


@pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA GPU here: device 'auto' trains on the CPU"
)
def test_auto_device_trains_on_cuda_with_sane_accuracy(tmp_path, digits_file):
    train = {**ADAM, "epochs": 10}
    runs, _ = run_job(
        tmp_path,
        digits_file,
        seeds=[0],
        arch={**MLP, "width": 32},
        train=train,
        epochs=(0, 10),
        device="auto",
    )
    assert runs["device"].to_list() == ["cuda"]
    assert runs["final_test_acc"][0] > 0.9


def test_checkpoints_follow_their_interval(digits):
    data = training.to_tensors(digits, torch.device("cpu"))
    seen = []
    for every in (0.0, 1e9):
        saved = []
        planned = block("mlp", MLP, ADAM, [0, 1], [0, 3])
        fit(data, planned, on_checkpoint=saved.append, checkpoint_every_s=every)
        seen.append([c["epoch"] for c in saved])
    assert seen == [[0, 1, 2, 3], []]  # every epoch, or never within a short run


def test_a_loss_that_stays_far_above_its_initial_value_is_a_divergence(digits):
    data = training.to_tensors(digits, torch.device("cpu"))
    train = {**ADAM, "epochs": 8, "schedule": "constant", "lr": 1e-4}
    rule = {"max_loss_ratio": 10.0, "patience": 3}
    kept = {}

    def on_dump(epoch, states):
        for seed, state in states.items():
            kept[seed, epoch] = {k: v.clone() for k, v in state.items()}
        if epoch == 1:  # seed 0's logits blow up, finite; a tiny lr cannot undo it in time
            states[0]["head.weight"].mul_(1e4)

    hit, other = fit(data, block("mlp", MLP, train, [0, 1], [0, 1, 8], rule), on_dump=on_dump)
    # over the limit from epoch 2 on: the third epoch in a row, epoch 4, stops it
    assert (hit.status, hit.diverged_epoch, hit.epochs_run) == ("diverged", 4, 4)
    assert hit.diverged_because == "loss above 10 x initial for 3 epochs"
    assert sorted(e for s, e in kept if s == 0) == [0, 1, 4]  # its state at the stop is dumped
    assert other.status == "ok" and other.diverged_because is None and other.epochs_run == 8
    # without the rule the same seed trains on with a finite loss: status ok
    again = fit(data, block("mlp", MLP, train, [0, 1], [0, 1, 8]), on_dump=on_dump)
    assert again[0].status == "ok" and again[0].epochs_run == 8


def test_init_scale_multiplies_every_weight_matrix_and_nothing_else():
    cpu = torch.device("cpu")
    vit = FAMILIES[2][1]
    plain = training.seed_models(block("vit", vit, seeds=[3]), (1, 8, 8), 10, cpu)
    doubled = block("vit", vit, {**ADAM, "init_scale": 2.0}, seeds=[3])
    scaled = training.seed_models(doubled, (1, 8, 8), 10, cpu)
    for name, w in plain.seed_state(0).items():
        kind = plain.kinds[name][0]
        expected = 2.0 * w if kind == "weight" else w
        assert torch.equal(scaled.seed_state(0)[name], expected), name


def test_train_fraction_trains_on_a_stratified_subset(digits):
    full = training.to_tensors(digits, torch.device("cpu"))
    part = training.to_tensors(digits, torch.device("cpu"), train_fraction=0.5)
    assert len(part.y_train) == int(0.5 * len(full.y_train))  # floor, as scikit-learn
    assert torch.equal(part.x_test, full.x_test)  # the test split is untouched
    counts = torch.bincount(part.y_train, minlength=10).float()
    assert (counts - torch.bincount(full.y_train, minlength=10).float() / 2).abs().max() <= 1
