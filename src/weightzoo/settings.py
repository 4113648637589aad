"""Training settings that a sweep can vary: their keys and id tags, grids and random search.

A run is (dataset, architecture, training setting, seed). A setting is the family's training
recipe (`train:` block and activation) with some keys overridden by a grid entry; its id
lists, in SETTING_KEYS order, the keys whose value differs from the family default
(`lr3e-2`, `lr1e-3-wd1e-4`), or is `default`. A grid entry lists values (every combination
is a setting) or, with `sample: N`, distributions that N settings are drawn from: draw i uses
a generator seeded by (seed, i) alone, so the same config always gives the same settings and
raising N keeps the first ones. Drawn numbers are rounded to 3 significant digits, so a
setting's id and its values agree exactly. No torch here: the config uses this while
Snakemake plans the workflow.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class SettingKey:
    """One sweepable setting: its name, its tag in setting ids, its type and where it acts."""

    name: str
    tag: str
    type: type
    acts_on: str  # "train" (the optimisation), "model" (the network), "data" (its inputs)


SETTING_KEYS = {
    k.name: k
    for k in [
        SettingKey("lr", "lr", float, "train"),
        SettingKey("weight_decay", "wd", float, "train"),
        SettingKey("batch_size", "bs", int, "train"),
        SettingKey("epochs", "ep", int, "train"),
        SettingKey("optimizer", "opt", str, "train"),
        SettingKey("momentum", "mom", float, "train"),
        SettingKey("schedule", "sch", str, "train"),
        SettingKey("activation", "act", str, "model"),
        SettingKey("init_scale", "init", float, "model"),
        SettingKey("train_fraction", "tf", float, "data"),
    ]
}
DEFAULT = "default"  # the id of a family's own recipe
SAMPLE_KEYS = ("sample", "seed")  # a random-search grid entry: how many settings, its seed
DISTRIBUTIONS = ("loguniform", "uniform", "choice")


class SettingError(ValueError):
    """A bad setting in a grid entry; the message starts with the key at fault."""


def family_defaults(family_cfg: dict) -> dict[str, Any]:
    """The value of every setting key for a family: its `train:` block and its activation."""
    recipe = {**family_cfg["train"], "activation": family_cfg["activation"]}
    return {k: recipe[k] for k in SETTING_KEYS}


def format_value(value: Any) -> str:
    """A value as it reads in an id: 3e-2, 0.5, 64, tanh (3 significant digits)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return str(value)
    text = f"{value:.3g}"
    if "e" in text or (value != 0 and abs(value) < 0.1):
        mantissa, exponent = f"{value:.2e}".split("e")
        mantissa = mantissa.rstrip("0").rstrip(".")
        return f"{mantissa}e{int(exponent)}"
    return text


def setting_id(values: dict[str, Any], defaults: dict[str, Any]) -> str:
    """The keys of `values` that differ from `defaults`, tagged, in SETTING_KEYS order."""
    parts = [
        f"{key.tag}{format_value(values[name])}"
        for name, key in SETTING_KEYS.items()
        if name in values and values[name] != defaults[name]
    ]
    return "-".join(parts) or DEFAULT


def _round(value: float, key: SettingKey) -> Any:
    if key.type is int:
        return round(float(value))
    return float(f"{value:.3g}")


def _draw(dist: Any, key: SettingKey, rng: np.random.Generator, where: str) -> Any:
    """One value of a distribution ({loguniform: [a, b]}, {uniform: [a, b]}, {choice: [...]}),
    a list (a choice) or a fixed value."""
    if isinstance(dist, list):
        dist = {"choice": dist}
    if not isinstance(dist, dict):
        return dist
    if len(dist) != 1 or next(iter(dist)) not in DISTRIBUTIONS:
        raise SettingError(
            f"{where}: a distribution is one of {{{', '.join(DISTRIBUTIONS)}}}: [...], got {dist}"
        )
    ((kind, args),) = dist.items()
    if kind == "choice":
        if not isinstance(args, list) or not args:
            raise SettingError(f"{where}.choice: give a non-empty list of values")
        return args[int(rng.integers(len(args)))]
    if not (isinstance(args, list) and len(args) == 2 and all(_number(a) for a in args)):
        raise SettingError(f"{where}.{kind}: give [low, high], two numbers")
    lo, hi = (float(a) for a in args)
    if not lo < hi:
        raise SettingError(f"{where}.{kind}: [{lo}, {hi}] is empty; give low < high")
    if key.type is str:
        raise SettingError(f"{where}: {key.name} takes a choice of values, not {kind}")
    if kind == "loguniform":
        if lo <= 0:
            raise SettingError(f"{where}.loguniform: low must be > 0, got {lo}")
        return _round(math.exp(rng.uniform(math.log(lo), math.log(hi))), key)
    return _round(rng.uniform(lo, hi), key)


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _grid_points(grid: dict, keys: list[str], where: str) -> Iterator[dict]:
    """Every combination of the lists of `keys` in a grid entry (a scalar is a list of one)."""
    values = []
    for k in keys:
        v = grid[k]
        v = v if isinstance(v, list) else [v]
        if not v:
            raise SettingError(f"{where}.{k}: an empty list")
        repeated = [x for i, x in enumerate(v) if x in v[:i]]
        if repeated and k in SETTING_KEYS:
            raise SettingError(f"{where}.{k}: {repeated[0]!r} is listed twice")
        values.append(v)
    for combo in itertools.product(*values):
        yield dict(zip(keys, combo, strict=True))


def expand(grid: dict, arch_keys: tuple[str, ...], where: str) -> list[tuple[dict, dict]]:
    """(architecture point, setting overrides) for every architecture and setting of a grid
    entry: a plain grid (lists), or a random search (`sample: N`, `seed`, distributions)."""
    unknown = sorted(set(grid) - set(arch_keys) - set(SETTING_KEYS) - set(SAMPLE_KEYS))
    if unknown:
        known = [*arch_keys, *SETTING_KEYS, *SAMPLE_KEYS]
        raise SettingError(f"{where}.{unknown[0]}: unknown key (known here: {', '.join(known)})")
    setting_keys = [k for k in grid if k in SETTING_KEYS]
    points = list(_grid_points(grid, [k for k in grid if k in arch_keys], where))
    if "sample" not in grid:
        if "seed" in grid:
            raise SettingError(f"{where}.seed: a seed belongs to a random search (sample: N)")
        settings = list(_grid_points(grid, setting_keys, where))
        return [(p, s) for p in points for s in settings]
    n, seed = grid["sample"], grid.get("seed", 0)
    if not setting_keys:
        example = "lr: {loguniform: [1.0e-4, 1.0e-1]}"
        raise SettingError(
            f"{where}.sample: a random search needs a setting to draw, e.g. {example}"
        )
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise SettingError(f"{where}.sample: the number of settings to draw, an integer >= 1")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise SettingError(f"{where}.seed: an integer >= 0")
    drawn = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        draw = {k: _draw(grid[k], SETTING_KEYS[k], rng, f"{where}.{k}") for k in setting_keys}
        if draw in drawn:
            raise SettingError(
                f"{where}.sample: draw {i} repeats draw {drawn.index(draw)} ({draw}); "
                "widen the distributions or draw fewer settings"
            )
        drawn.append(draw)
    return [(p, s) for p in points for s in drawn]
