"""The verdict ladder: the claims table turned into one line per claim x subset
(`verdicts`, columns `VERDICT_COLUMNS`, vocabulary `VERDICTS`) and one per statistic
(`statistic_verdicts`).

A statistic's verdict names the first rung it fails: testable, consistent (pooled strata agree
in sign), significant in the claimed direction, beyond size, beyond initialisation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import polars as pl

from weightzoo.analysis.cells import ALL, TARGET_LABELS
from weightzoo.analysis.inference import BORDERLINE
from weightzoo.analysis.rows import MINUS
from weightzoo.markdown import MISSING, fmt

NO_INIT = "no initial weights"  # the note of a control an imported zoo cannot give

VERDICTS = {  # the vocabulary of `verdicts`, strongest first
    "supported": "significant (q < α) at the architecture level, beyond size and beyond "
    "initialisation (claim 3: same shape and same size)",
    "beyond size": "significant beyond size; the initialisation control is not testable (an "
    "imported zoo without initial weights)",
    "initialisation": "significant beyond size, but not once initialisation is factored out "
    "(statistic relative to epoch 0; w − w0 or w / std(w0)): raw weights only",
    "explained by size": "significant, but not given log(parameter count)",
    "shape only": "claim 3: same shape of the trajectories; the size of the change differs "
    "(or cannot be measured: a family's change indistinguishable from 0)",
    "inconsistent": "pooled: strata significant in opposite directions",
    "not supported": "no significant effect in the claimed direction",
    "not testable": "too few architectures (or seeds, or dumped epochs) for a test; an "
    "imported zoo may lack initial weights or have one seed per cell",
    "at chance": "the family's best architecture is at chance accuracy: no groups, no tests",
}
VERDICT_SCHEMA = {
    "claim": pl.Int32, "within": pl.String, "dataset": pl.String, "family": pl.String,
    "verdict": pl.String,
    "statistic": pl.String, "direction": pl.String, "estimate": pl.Float64,
    "ci_low": pl.Float64, "ci_high": pl.Float64, "q_value": pl.Float64, "n_cells": pl.Int64,
    "n_runs": pl.Int64, "beyond_size": pl.Boolean, "beyond_init": pl.Boolean,
    "consistent": pl.Boolean, "detail": pl.String,
}  # fmt: skip
VERDICT_COLUMNS = list(VERDICT_SCHEMA)
STATISTIC_VERDICT_SCHEMA = {
    "claim": pl.Int32, "dataset": pl.String, "family": pl.String, "statistic": pl.String,
    "verdict": pl.String, "direction": pl.String, "estimate": pl.Float64, "q_value": pl.Float64,
    "size_estimate": pl.Float64, "size_q_value": pl.Float64, "init_target": pl.String,
    "init_estimate": pl.Float64, "init_q_value": pl.Float64, "consistent": pl.Boolean,
    "directions": pl.String,
}  # fmt: skip
_RANK = {v: i for i, v in enumerate(reversed(list(VERDICTS)))}


def verdicts(claims: pl.DataFrame) -> pl.DataFrame:
    """One line per claim and subset (dataset x family, pooled 'all'): the verdict
    (`VERDICTS`), its direction, effect size with 95 % CI, q, n cells / n runs and the
    controls. Claim 1 shows its strongest statistic and lists all in `detail`."""
    if "within" in claims.columns and claims["within"].n_unique() > 1:
        parts = claims.partition_by("within", maintain_order=True)
        return pl.concat([verdicts(part) for part in parts])
    within = claims["within"][0] if "within" in claims.columns and claims.height else "family"
    rows = claims.to_dicts()
    by_subset: dict[tuple, list[dict]] = {}
    for r in rows:
        by_subset.setdefault((r["claim"], r["dataset"], r["family"]), []).append(r)
    out = []
    for (claim, dataset, family), part in by_subset.items():
        if any(r["test"] == "none" for r in part):
            r = part[0]
            verdict = "at chance" if r["note"].startswith("at chance") else "not testable"
            out.append(_verdict(claim, dataset, family, verdict, r, detail=r["note"]))
        elif claim == 3:
            out.append(_shape_verdict(dataset, family, part))
        else:
            out.append(_effect_verdict(claim, dataset, family, part, rows))
    return pl.DataFrame([{**r, "within": within} for r in out], schema=VERDICT_SCHEMA)


def _verdict(claim, dataset, family, verdict, r, **fields) -> dict:
    base = {
        "claim": claim,
        "dataset": dataset,
        "family": family,
        "verdict": verdict,
        "statistic": r.get("statistic"),
        "direction": r.get("direction"),
        "estimate": r.get("estimate"),
        "ci_low": r.get("ci_low"),
        "ci_high": r.get("ci_high"),
        "q_value": r.get("q_value"),
        "n_cells": r.get("n_cells"),
        "n_runs": r.get("n_runs"),
        "beyond_size": None,
        "beyond_init": None,
        "consistent": None,
        "detail": "",
    }
    return base | fields


def _effect_verdict(
    claim: int, dataset: str, family: str, part: list[dict], rows: list[dict]
) -> dict:
    """Claims 1 and 2: the ladder per statistic; the strongest one is the headline."""
    found = _statistic_ladders(claim, dataset, family, part, rows)
    head = found[0]
    tested = [f for f in found if f.verdict != "not testable"]
    if not tested:  # say why once, not once per statistic
        reason = (head.primary or part[0])["note"]
        return _verdict(
            claim,
            dataset,
            family,
            "not testable",
            part[0],
            statistic=None,
            estimate=None,
            direction=None,
            detail=reason,
        )
    ranks = [_RANK[f.verdict] for f in tested]
    detail = "; ".join(_stat_detail(f) for f in found)
    if claim == 2:
        detail = "; ".join([detail, *_claim2_extras(part)])
    return _verdict(
        claim,
        dataset,
        family,
        head.verdict,
        head.primary or part[0],
        beyond_size=max(ranks) >= _RANK["initialisation"] if ranks else None,
        beyond_init=None if head.verdict == "beyond size" else max(ranks) >= _RANK["supported"],
        consistent=head.consistent,
        detail=detail,
    )


def _shape_verdict(dataset: str, family: str, part: list[dict]) -> dict:
    """Claim 3: same shape (every measure) and same size, reported separately."""
    shape = [r for r in part if r["test"] == "shape_pearson"]
    size = [r for r in part if r["test"] == "size_ratio"]
    head = shape[0]
    if any(r["supported"] is None for r in shape):
        verdict = "not testable"
    elif not all(r["supported"] for r in shape):
        verdict = "not supported"
    elif all(r["supported"] for r in size):
        verdict = "supported"
    else:  # a size differs, or cannot be measured
        verdict = "shape only"
    words = {True: "same size", False: "different size", None: "size not measurable"}
    detail = "; ".join(
        f"{r['statistic']}: r {_q(r)}, size ratio "
        f"{fmt(s['estimate'])} [{fmt(s['ci_low'])}, {fmt(s['ci_high'])}] "
        f"({words[s['supported']]}); {r['note']}"
        for r, s in zip(shape, size, strict=True)
    )
    consistent = None if verdict == "not testable" else all(r["direction"] != "±" for r in shape)
    return _verdict(
        3, dataset, family, verdict, head, beyond_size=None, consistent=consistent, detail=detail
    )


def statistic_verdicts(claims: pl.DataFrame) -> pl.DataFrame:
    """Claims 1 and 2: the verdict of every statistic of every subset, with its controls."""
    rows = claims.filter(pl.col("claim").is_in([1, 2]), pl.col("test") != "none").to_dicts()
    by_subset: dict[tuple, list[dict]] = {}
    for r in rows:
        by_subset.setdefault((r["claim"], r["dataset"], r["family"]), []).append(r)
    out = [
        v.record(*key)
        for key, part in by_subset.items()
        for v in _statistic_ladders(*key, part, rows)
    ]
    return pl.DataFrame(out, schema=STATISTIC_VERDICT_SCHEMA)


@dataclass
class StatVerdict:
    """The ladder's result for one statistic of one subset (claims 1 and 2)."""

    verdict: str
    statistic: str
    primary: dict | None
    size: dict | None
    init: dict | None
    consistent: bool | None
    directions: str

    def record(self, claim: int, dataset: str, family: str) -> dict:
        p, s, i = self.primary or {}, self.size or {}, self.init or {}
        return {
            "claim": claim,
            "dataset": dataset,
            "family": family,
            "statistic": self.statistic,
            "verdict": self.verdict,
            "direction": p.get("direction"),
            "estimate": p.get("estimate"),
            "q_value": p.get("q_value"),
            "size_estimate": s.get("estimate"),
            "size_q_value": s.get("q_value"),
            "init_target": i.get("target"),
            "init_estimate": i.get("estimate"),
            "init_q_value": i.get("q_value"),
            "consistent": self.consistent,
            "directions": self.directions,
        }


def _statistic_ladders(
    claim: int, dataset: str, family: str, part: list[dict], rows: list[dict]
) -> list[StatVerdict]:
    """The ladder of every statistic of one subset, strongest first."""
    pooled = ALL in (dataset, family)
    found = []
    for stat in dict.fromkeys(r["statistic"] for r in part if r["role"] != "secondary"):
        role = {r["role"]: r for r in part if r["statistic"] == stat}
        primary = role.get("primary")
        consistent, directions = None, ""
        if pooled and primary is not None:
            same = [
                r
                for r in rows
                if r["claim"] == claim
                and r["test"] == primary["test"]
                and r["target"] == primary["target"]
                and r["statistic"] == stat
            ]
            consistent, directions = consistency(
                _components(same, dataset, family), dataset, family
            )
        size, init = role.get("control: size"), role.get("control: initialisation")
        verdict = _ladder(primary, size, init, consistent)
        found.append(StatVerdict(verdict, stat, primary, size, init, consistent, directions))
    found.sort(key=lambda f: (-_RANK[f.verdict], *_strength(f.primary)))
    return found


def _ladder(
    primary: dict | None, size: dict | None, init: dict | None, consistent: bool | None
) -> str:
    """The verdict of one statistic: testable, consistent, significant, beyond size, beyond
    initialisation, in that order."""
    if primary is None or primary["significant"] is None:
        return "not testable"
    if consistent is False:
        return "inconsistent"
    if not primary["supported"]:
        return "not supported"
    if size is None or not size["supported"]:
        return "explained by size"
    if init is None or not init["supported"]:
        # a control the data cannot give (no initial weights) explains nothing
        untested = init is not None and init["significant"] is None
        return "beyond size" if untested and NO_INIT in (init["note"] or "") else "initialisation"
    return "supported"


def consistency(components: list[dict], dataset: str, family: str) -> tuple[bool | None, str]:
    """Whether the significant strata agree in sign, by family and by dataset, and a text
    such as "mlp −, cnn +": '·' none significant, '±' both signs within one value."""
    dims = [d for d, v in (("family", family), ("dataset", dataset)) if v == ALL]
    texts, agree, any_sig = [], True, False
    for dim in dims:
        values = sorted({r[dim] for r in components})
        if len(values) < 2:
            continue
        signs = {}
        for v in values:
            s = {r["direction"] for r in components if r[dim] == v and r["significant"]}
            signs[v] = "·" if not s else ("±" if len(s) > 1 else s.pop())
        definite = {s for s in signs.values() if s in ("+", MINUS)}
        any_sig |= any(s != "·" for s in signs.values())
        agree &= len(definite) <= 1 and "±" not in signs.values()
        if len(values) <= 4:
            texts.append(", ".join(f"{v} {s}" for v, s in signs.items()))
        else:  # many datasets: counts per sign
            tally = {s: sum(x == s for x in signs.values()) for s in ("+", MINUS, "±", "·")}
            texts.append(
                f"{len(values)} {dim}s: " + ", ".join(f"{n} {s}" for s, n in tally.items() if n)
            )
    if not texts:
        return None, ""
    return (agree if any_sig else None), "; ".join(texts)


def _components(rows: list[dict], dataset: str, family: str) -> list[dict]:
    """The per-stratum rows a pooled row of (dataset, family) is made of."""
    return [
        r
        for r in rows
        if r["dataset"] != ALL
        and r["family"] != ALL
        and dataset in (ALL, r["dataset"])
        and family in (ALL, r["family"])
    ]


def _strength(r: dict | None) -> tuple[float, float]:
    """Sort key of equally ranked statistics: smaller q, then larger |estimate|."""
    if r is None or r["q_value"] is None:
        return 2.0, 0.0
    return r["q_value"], -abs(r["estimate"] or 0.0)


def _stat_detail(v: StatVerdict) -> str:
    text = (
        f"{v.statistic} ρ {_q(v.primary)} (given size {_q(v.size)}, {_init_label(v.init)} "
        f"{_q(v.init)}): {v.verdict}"
    )
    deciding = (v.primary, v.size, v.init)
    if any(r is not None and BORDERLINE in (r["note"] or "") for r in deciding):
        text += " (borderline: a deciding q is within permutation error of α)"
    return text + (f" [{v.directions}]" if v.directions else "")


def _q(r: dict | None) -> str:
    if r is None or r["estimate"] is None:
        return MISSING
    star = "*" if r["significant"] else ""
    return f"{r['estimate']:+.2f}{star}".replace("-", MINUS)


def _init_label(r: dict | None) -> str:
    if r is None:
        return "init"
    return {"scaled": "w/std(w0)", "delta": "w−w0"}.get(r["target"], "rel. to epoch 0") + " | size"


def _claim2_extras(part: list[dict]) -> list[str]:
    """Claim 2's secondary results in words: between-architecture test, run-level reading."""
    out = []
    for r in part:
        if r["test"] == "between_w1_cells" and r["estimate"] is None:
            out.append(f"between architectures {TARGET_LABELS[r['target']]}: {r['note']}")
        elif r["test"] == "between_w1_cells":
            ratio = math.exp(r["estimate"])
            run = (
                f", run-level ratio {r['run_estimate']:.3g} (p {_p(r['run_p_value'])})"
                if r["run_estimate"] is not None
                else ""
            )
            out.append(
                f"between architectures {TARGET_LABELS[r['target']]}: optimal/suboptimal "
                f"W1 {ratio:.3g}{'*' if r['significant'] else ''}{run}"
            )
    spread = [r for r in part if r["test"] == "seed_std_spearman" and r["supported"]]
    if spread:
        out.append("seed std falls with accuracy: " + ", ".join(r["statistic"] for r in spread))
    return out


def _p(p: float | None) -> str:
    return MISSING if p is None else "< 1e-300" if p == 0 else f"{p:.2g}"
