"""Benchmark: Krippendorff's alpha for every labelling dimension over ~1M annotations.

    .venv/bin/python bench/alpha_bench.py              # 333,334 pairs x 3 = 1,000,002 labels
    .venv/bin/python bench/alpha_bench.py --pairs 50000

Simulation (seeded): each pair gets 3 distinct annotators from a pool of 60; each annotator
has a reliability r ~ U(0.75, 0.97) and replaces the true value by a random one with
probability 1 - r; 3% of preference labels are UNDECIDABLE. Dimensions: preference (4-level
ordinal), objectivity (3 nominal), task category (60 free strings, nominal), controversiality
(3-level ordinal), desired attributes (8 attributes, multi-select; each flipped with prob 0.08).
Inputs are what a service would hand over: numpy string columns, and the desired attributes
as an AttributeMatrix (labels x attributes booleans); the same from per-label Python lists
is timed too.

"Ours" = curation.agreement (np.unique + bincount -> units x values count matrix ->
krippendorff.alpha(value_counts=...), or the O(units x V) coincidence path for V=60).
Two naive baselines are timed:
  (1) the package's reliability_data input: an annotators x units matrix (60 x 333,334, NaN
      for "did not label"), built with vectorised numpy, then krippendorff.alpha(reliability_data=...).
      Run at full size for every dimension except task category, which would need a
      units x 60 x 60 float64 tensor (~9.6 GB); that one is run on a 10,000-unit subsample
      and extrapolated linearly (the package's cost is linear in units).
  (2) a pure-Python pairwise loop (dicts, one iteration per value pair) for preference,
      on a 20,000-unit subsample, extrapolated linearly.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import krippendorff
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from curation.agreement import (  # noqa: E402
    CONTROVERSIALITY,
    DIMENSIONS,
    OBJECTIVITY,
    PREFERENCE,
    TASK_CATEGORY,
    AttributeMatrix,
    LabelColumns,
    agreement_report,
    annotator_agreement,
    desired_attribute_alphas,
    dimension_alpha,
    encode_values,
)

POOL = 60
N_CATEGORIES = 60
ATTRIBUTES = ("accuracy", "safety", "originality", "helpfulness", "conciseness", "depth", "style", "honesty")


def simulate(n_pairs: int, seed: int = 0) -> LabelColumns:
    """Three labels per pair with annotator-dependent noise (see module docstring)."""
    rng = np.random.default_rng(seed)
    n = n_pairs * 3
    units = np.repeat(np.arange(n_pairs, dtype=np.int64), 3)
    # Three distinct annotators per pair: the 3 smallest of 60 random keys per row.
    annotators = np.argpartition(rng.random((n_pairs, POOL)), 3, axis=1)[:, :3].reshape(-1).astype(np.int64)
    reliability = rng.uniform(0.75, 0.97, POOL)
    noisy = rng.random(n) > reliability[annotators]

    def column(domain: tuple[str, ...], weights: np.ndarray | None = None) -> np.ndarray:
        truth = np.repeat(rng.choice(len(domain), n_pairs, p=weights), 3)
        codes = np.where(noisy & (rng.random(n) < 0.8), rng.integers(0, len(domain), n), truth)
        return np.asarray(domain)[codes]

    preference = column(PREFERENCE.domain).astype("<U11")  # type: ignore[arg-type]  # room for UNDECIDABLE
    preference[rng.random(n) < 0.03] = "UNDECIDABLE"
    categories = tuple(f"category_{i:02d}" for i in range(N_CATEGORIES))
    cat_weights = rng.dirichlet(np.full(N_CATEGORIES, 0.7))
    truth_attrs = rng.random((n_pairs, len(ATTRIBUTES))) < np.linspace(0.6, 0.05, len(ATTRIBUTES))
    attrs = np.repeat(truth_attrs, 3, axis=0) ^ (rng.random((n, len(ATTRIBUTES))) < 0.08)
    desired = AttributeMatrix(names=ATTRIBUTES, present=attrs)
    return LabelColumns(
        unit_ids=units,
        annotator_ids=annotators,
        preference=preference,
        objectivity=column(OBJECTIVITY.domain, np.array([0.5, 0.3, 0.2])),  # type: ignore[arg-type]
        task_category=column(categories, cat_weights),
        controversiality=column(CONTROVERSIALITY.domain, np.array([0.6, 0.3, 0.1])),  # type: ignore[arg-type]
        desired_attributes=desired,
    )


def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def reliability_matrix(units: np.ndarray, annotators: np.ndarray, codes: np.ndarray, n_units: int) -> np.ndarray:
    """annotators x units float matrix, NaN where an annotator did not label (or value missing)."""
    m = np.full((POOL, n_units), np.nan)
    keep = codes >= 0
    m[annotators[keep], units[keep]] = codes[keep]
    return m


def naive_package(cols: LabelColumns, n_pairs: int) -> dict[str, tuple[float | None, float, str]]:
    """Baseline (1): krippendorff.alpha(reliability_data=annotators x units)."""
    out: dict[str, tuple[float | None, float, str]] = {}
    units, anns = np.asarray(cols.unit_ids), np.asarray(cols.annotator_ids)
    for dim in DIMENSIONS:
        values = getattr(cols, dim.name)
        if dim is TASK_CATEGORY:
            sub = 10_000
            mask = units < sub
            start = time.perf_counter()
            codes, _ = encode_values(values[mask], dim)
            alpha = krippendorff.alpha(
                reliability_data=reliability_matrix(units[mask], anns[mask], codes, sub), level_of_measurement=dim.level
            )
            seconds = (time.perf_counter() - start) * n_pairs / sub
            out[dim.name] = (float(alpha), seconds, f"extrapolated from {sub:,} units")
            continue
        start = time.perf_counter()
        codes, _ = encode_values(values, dim)
        alpha = krippendorff.alpha(
            reliability_data=reliability_matrix(units, anns, codes, n_pairs), level_of_measurement=dim.level
        )
        out[dim.name] = (float(alpha), time.perf_counter() - start, "full size")
    start = time.perf_counter()
    matrix = cols.desired_attributes
    assert isinstance(matrix, AttributeMatrix)
    for j in range(len(matrix.names)):
        codes = matrix.present[:, j].astype(np.int64)
        krippendorff.alpha(
            reliability_data=reliability_matrix(units, anns, codes, n_pairs), level_of_measurement="nominal"
        )
    out["desired_attributes"] = (None, time.perf_counter() - start, f"full size, {len(ATTRIBUTES)} attributes")
    return out


def naive_python_preference(cols: LabelColumns, sub: int) -> tuple[float, float]:
    """Baseline (2): textbook pure-Python coincidence loop (ordinal) on the first ``sub`` units."""
    start = time.perf_counter()
    order = {v: i for i, v in enumerate(PREFERENCE.domain)}  # type: ignore[union-attr]
    by_unit: dict[int, list[int]] = defaultdict(list)
    for u, v in zip(
        np.asarray(cols.unit_ids)[: sub * 3].tolist(), np.asarray(cols.preference)[: sub * 3].tolist(), strict=True
    ):
        if v in order:
            by_unit[u].append(order[v])
    o: dict[tuple[int, int], float] = defaultdict(float)
    for vals in by_unit.values():
        m = len(vals)
        if m < 2:
            continue
        for i in range(m):
            for j in range(m):
                if i != j:
                    o[vals[i], vals[j]] += 1.0 / (m - 1)
    values = range(len(order))
    n_v = [sum(o[c, k] for k in values) for c in values]
    n = sum(n_v)

    def delta(c: int, k: int) -> float:
        lo, hi = min(c, k), max(c, k)
        return (sum(n_v[lo : hi + 1]) - (n_v[c] + n_v[k]) / 2) ** 2

    observed = sum(o[c, k] * delta(c, k) for c in values for k in values)
    expected = sum(n_v[c] * n_v[k] * delta(c, k) for c in values for k in values)
    alpha = 1 - (n - 1) * observed / expected
    return alpha, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=333_334)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-naive", action="store_true")
    args = parser.parse_args()

    cols, sim_s = timed(simulate, args.pairs, args.seed)
    print(f"simulated {len(cols):,} labels on {args.pairs:,} pairs, pool {POOL} annotators ({sim_s:.1f} s)")
    print(f"numpy {np.__version__}, krippendorff {importlib.metadata.version('krippendorff')}")
    print()
    print("ours (curation.agreement), seconds per dimension:")
    ours: dict[str, tuple[float | None, float]] = {}
    for dim in DIMENSIONS:
        alpha, seconds = timed(dimension_alpha, cols.unit_ids, getattr(cols, dim.name), dim)
        ours[dim.name] = (alpha, seconds)
        print(f"  {dim.name:<20} alpha={alpha:.4f}  {seconds:7.3f} s")
    attrs, seconds = timed(desired_attribute_alphas, cols.unit_ids, cols.desired_attributes)
    ours["desired_attributes"] = (None, seconds)
    shown = ", ".join(f"{k}={v:.3f}" for k, v in attrs.items())
    print(f"  {'desired_attributes':<20} {len(attrs)} attributes  {seconds:7.3f} s   ({shown})")
    matrix = cols.desired_attributes
    assert isinstance(matrix, AttributeMatrix)
    names = np.asarray(matrix.names, dtype=object)
    lists = [list(names[row]) for row in matrix.present]
    _, lists_s = timed(desired_attribute_alphas, cols.unit_ids, lists)
    print(
        f"  {'':<20} same from {len(lists):,} Python lists (one pass to AttributeMatrix): {lists_s:.3f} s (not in the sum)"
    )
    del lists
    ours_total = sum(s for _, s in ours.values())
    print(f"  {'sum of dimensions':<20} {'':<12}{ours_total:7.3f} s")
    report, report_s = timed(agreement_report, cols)
    print(
        f"  agreement_report (all dimensions + duplicate check): {report_s:.3f} s"
        f"  n_units={report['n_units']:,} n_labels={report['n_labels']:,}"
    )
    per_ann, per_ann_s = timed(annotator_agreement, cols.unit_ids, cols.annotator_ids, cols.preference)
    worst = max(per_ann.values(), key=lambda a: a.alpha_delta or -1.0)
    print(
        f"  annotator_agreement ({len(per_ann)} annotators, rate + alpha-without): {per_ann_s:.3f} s"
        f"  most out of line: {worst.annotator_id} (rate {worst.agreement_rate:.3f}, delta {worst.alpha_delta:+.4f})"
    )

    if args.skip_naive:
        return
    print()
    print("naive (1): krippendorff.alpha(reliability_data = 60 annotators x units matrix):")
    naive = naive_package(cols, args.pairs)
    for name, (alpha, seconds, how) in naive.items():
        ratio = seconds / ours[name][1]
        shown_alpha = "" if alpha is None else f"alpha={alpha:.4f}"
        print(f"  {name:<20} {shown_alpha:<12} {seconds:8.3f} s  ({how})  x{ratio:.1f} ours")
    naive_total = sum(s for _, s, _ in naive.values())
    print(f"  {'total':<20} {'':<12} {naive_total:8.3f} s   ratio naive/ours = {naive_total / ours_total:.1f}x")

    sub = min(20_000, args.pairs)
    alpha, seconds = naive_python_preference(cols, sub)
    full = seconds * args.pairs / sub
    print()
    print(
        f"naive (2): pure-Python pairwise loop, preference only, {sub:,} units in {seconds:.3f} s"
        f" (alpha on the subsample {alpha:.4f}),"
    )
    print(
        f"  extrapolated to {args.pairs:,} units: {full:.2f} s   ratio naive/ours = {full / ours['preference'][1]:.1f}x"
    )


if __name__ == "__main__":
    main()
