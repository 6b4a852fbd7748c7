"""Inter-annotator agreement: Krippendorff's alpha per labelling dimension.

Pure module: numpy and the ``krippendorff`` package only, no Django (see STYLE.md section 1).
Callers (``curation/agreement_figures.py``, Celery tasks) turn annotation rows into plain columns and
call :func:`agreement_report` / :func:`annotator_agreement`.

How alpha is computed
---------------------
Labels come in as parallel columns ``(unit_id, annotator_id, value)``; a *unit* is a pair.
They are folded, with vectorised numpy (``np.unique`` / comparisons + ``np.bincount``, no
Python loop per label), into a ``units x values`` count matrix -- the ``value_counts`` input of
``krippendorff.alpha``. Only units with at least two values (pairable units) and only values
that occur in them are kept: the others contribute nothing to the coincidence matrix, and
dropping them does not change alpha (for the ordinal metric a value with frequency 0 adds 0
to every rank distance).

``krippendorff.alpha(value_counts=...)`` materialises a ``units x V x V`` float64 tensor.
That is fine for the small scales (preference V=4, objectivity V=3, controversiality V=3,
each desired attribute V=2) but not for a 50+ category task taxonomy (333k units x 50 x 50
x 8 bytes = 6.7 GB per temporary; V=20 already takes ~9 s). When ``units * V * V`` exceeds
``PACKAGE_MAX_CELLS`` the same coincidence matrix is built from the non-zero cells only
(O(labels) memory, see :func:`_coincidences_from_entries`) and alpha is taken from it with
Krippendorff's formulas. Both paths are checked against the package in the tests.

Degenerate cases (documented choice)
------------------------------------
* No pairable unit (every unit has fewer than two non-missing values): ``None``.
* Only one distinct value among the pairable values: expected disagreement D_e is 0 and
  alpha = 1 - D_o/D_e = 0/0 is undefined; we return ``None`` ("undefined"), not 1.0 and
  not NaN. (``krippendorff.alpha`` raises in this case.) Callers show "n/a" and must not
  treat it as passing the 0.85 threshold.

Missing values: ``None``, ``""`` and float NaN are missing in every dimension; the
preference value ``"UNDECIDABLE"`` is missing for the preference dimension.

Desired attributes are a multi-select: each attribute is its own nominal present/absent
variable. Their columnar form is :class:`AttributeMatrix` (labels x attributes booleans);
per-label Python lists are accepted too and converted in one pass (the only per-label Python
loop in this module, inherent to ragged input).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import krippendorff
import numpy as np
import numpy.typing as npt

from annotation.preference import B_SLIGHTLY, DECIDED, UNDECIDABLE

Level = Literal["nominal", "ordinal"]

#: Above this many cells in the ``units x V x V`` tensor the package's dense path is
#: replaced by the equivalent O(labels) coincidence computation (see module docstring).
PACKAGE_MAX_CELLS = 1 << 24

#: The preference scale, in ordinal order, is annotation.preference's (the one owner of the code).
PREFERENCE_LEVELS: tuple[str, ...] = DECIDED


@dataclass(frozen=True)
class Dimension:
    """One labelled variable.

    ``domain`` is the ordered tuple of allowed codes (order matters for ``ordinal``), or
    ``None`` for a free nominal set (task category: whatever strings occur). ``missing``
    lists codes that count as "no value" in addition to ``None`` / ``""`` / NaN.
    """

    name: str
    level: Level
    domain: tuple[str, ...] | None
    missing: frozenset[str] = frozenset()


PREFERENCE = Dimension("preference", "ordinal", PREFERENCE_LEVELS, frozenset({UNDECIDABLE}))
OBJECTIVITY = Dimension("objectivity", "nominal", ("factual", "opinion", "open_ended"))
TASK_CATEGORY = Dimension("task_category", "nominal", None)
CONTROVERSIALITY = Dimension("controversiality", "ordinal", ("low", "medium", "high"))
#: The single-valued dimensions reported by :func:`agreement_report`, in report order.
DIMENSIONS: tuple[Dimension, ...] = (PREFERENCE, OBJECTIVITY, TASK_CATEGORY, CONTROVERSIALITY)
DESIRED_ATTRIBUTES = "desired_attributes"


# --------------------------------------------------------------------------- encoding


def _py(value: Any) -> Any:
    """A numpy scalar as the plain Python value (for error messages and dict keys)."""
    return value.item() if isinstance(value, np.generic) else value


def _as_1d(name: str, values: Any) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def _missing_mask(values: np.ndarray) -> np.ndarray:
    """True where a raw value is None, "" or NaN (vectorised over object/str/float arrays)."""
    if values.dtype.kind == "f":
        return np.isnan(values)
    if values.dtype.kind in "US":
        return values == values.dtype.type("")
    if values.dtype.kind == "O":
        # `x != x` is the NaN test; `== None` / `== ""` compare element-wise on object arrays.
        return (values == None) | (values == "") | (values != values)  # noqa: E711
    return np.zeros(values.shape, dtype=bool)


def encode_values(values: Any, dimension: Dimension) -> tuple[np.ndarray, tuple[str, ...]]:
    """Map raw values to integer codes.

    Returns ``(codes, domain)``: ``codes`` is int64 of the same length with ``-1`` for
    missing values, ``domain[code]`` is the value. For a fixed domain the codes follow its
    order; for a free nominal dimension the domain is the sorted set of observed values.
    Raises ValueError naming the first value outside a fixed domain.
    """
    raw = _as_1d(f"{dimension.name} values", values)
    missing = _missing_mask(raw)
    if raw.dtype.kind not in "OUS":  # numbers: compare as text (missing ones are masked already)
        raw = raw.astype(str)
    for code in dimension.missing:
        missing |= raw == code
    if dimension.domain is None:
        if raw.size == 0:
            return np.zeros(0, dtype=np.int64), ()
        # One sort over all labels; a free set has no other way to learn its values.
        distinct, inverse = np.unique(np.where(missing, "", raw).astype(str), return_inverse=True)
        observed = [str(v) for v in distinct]
        lookup = np.arange(len(observed), dtype=np.int64) - (1 if observed and observed[0] == "" else 0)
        domain = tuple(v for v in observed if v)
        return np.where(missing, -1, lookup[inverse.reshape(-1)]), domain
    # A fixed domain is small: one vectorised comparison per allowed value beats sorting strings.
    codes = np.full(raw.shape, -1, dtype=np.int64)
    for j, code in enumerate(dimension.domain):
        codes[(raw == code) & ~missing] = j
    unknown = np.flatnonzero((codes < 0) & ~missing)
    if unknown.size:
        value = _py(raw[unknown[0]])
        raise ValueError(
            f"{dimension.name}: value {value!r} is not one of {list(dimension.domain)}"
            + (f" or {sorted(dimension.missing)}" if dimension.missing else "")
        )
    return codes, dimension.domain


def _unit_index(unit_ids: Any) -> tuple[np.ndarray, int]:
    """Dense unit index 0..n_units-1 (in sorted id order) for every label, and n_units."""
    units = _as_1d("unit_ids", unit_ids)
    if units.size == 0:
        return np.zeros(0, dtype=np.int64), 0
    if units.dtype.kind in "iu":
        step = np.diff(units)
        if (step >= 0).all():  # rows usually come ordered by pair id: O(n), no sort
            index = np.concatenate([[0], np.cumsum(step != 0)]).astype(np.int64)
            return index, int(index[-1]) + 1
    distinct, inverse = np.unique(units, return_inverse=True)
    return inverse.reshape(-1).astype(np.int64), int(distinct.size)


def _count_matrix(unit_idx: np.ndarray, codes: np.ndarray, n_units: int, n_values: int) -> np.ndarray:
    keep = codes >= 0
    flat = unit_idx[keep] * n_values + codes[keep]
    return np.bincount(flat, minlength=n_units * n_values).reshape(n_units, n_values)


def value_counts(unit_ids: Any, values: Any, dimension: Dimension) -> tuple[np.ndarray, tuple[str, ...]]:
    """Build the ``units x values`` count matrix for one dimension.

    ``unit_ids`` and ``values`` are parallel 1-D sequences/arrays (one entry per label).
    Returns ``(counts, domain)``: ``counts[u, v]`` = number of annotators who gave unit ``u``
    (in ``np.unique(unit_ids)`` order) the value ``domain[v]``; missing values are not counted,
    so a row may sum to 0 or 1. Each (unit, annotator) must appear at most once (not checked
    here: there are no annotator ids; :func:`agreement_report` checks it).
    """
    unit_idx, n_units = _unit_index(unit_ids)
    codes, domain = encode_values(values, dimension)
    if codes.shape != unit_idx.shape:
        raise ValueError(f"unit_ids has {unit_idx.size} entries but values has {codes.size}")
    return _count_matrix(unit_idx, codes, n_units, len(domain)), domain


# --------------------------------------------------------------------------- alpha


def _coincidences_from_entries(unit: np.ndarray, value: np.ndarray, count: np.ndarray, n_values: int) -> np.ndarray:
    """Krippendorff's coincidence matrix o (V x V) from the non-zero cells of a count matrix.

    ``unit``/``value``/``count`` list the cells ``counts[unit, value] = count > 0`` sorted by
    unit, each (unit, value) once. o = sum_u (c_u c_u^T - diag(c_u)) / (m_u - 1) over units
    with m_u >= 2 values. Cells of one unit are contiguous, so pairs of cells are found by
    comparing the arrays with themselves shifted by 1, 2, ... (at most "values per unit"
    shifts). Cost O(cells x values per unit), memory O(cells): no units x V x V tensor.
    """
    count = count.astype(np.float64, copy=False)
    o = np.zeros((n_values, n_values))
    if unit.size == 0:
        return o
    m = np.bincount(unit, weights=count)
    w_unit = np.zeros_like(m)
    np.divide(1.0, m - 1.0, out=w_unit, where=m >= 2)
    w = w_unit[unit]
    o[np.diag_indices(n_values)] = np.bincount(value, weights=w * count * (count - 1.0), minlength=n_values)
    for shift in range(1, unit.size):
        i = np.flatnonzero(unit[shift:] == unit[:-shift])
        if i.size == 0:
            break
        j = i + shift
        cross = np.bincount(
            value[i] * n_values + value[j], weights=w[i] * count[i] * count[j], minlength=n_values * n_values
        ).reshape(n_values, n_values)
        o += cross + cross.T
    return o


def _coincidences(counts: np.ndarray) -> np.ndarray:
    """Coincidence matrix o (V x V) of a dense units x V count matrix (see above)."""
    unit, value = np.nonzero(counts)  # row-major: sorted by unit
    return _coincidences_from_entries(unit, value, counts[unit, value], counts.shape[1])


def _coincidences_from_labels(unit_idx: np.ndarray, codes: np.ndarray, n_values: int) -> np.ndarray:
    """Coincidence matrix straight from label columns (codes -1 = missing are skipped)."""
    keep = codes >= 0
    key = np.sort(unit_idx[keep] * n_values + codes[keep])
    if key.size == 0:
        return np.zeros((n_values, n_values))
    starts = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]]))
    count = np.diff(np.append(starts, key.size))
    unit, value = np.divmod(key[starts], n_values)
    return _coincidences_from_entries(unit, value, count, n_values)


def _distance_matrix(n_v: np.ndarray, level: Level) -> np.ndarray:
    """Squared distance metric delta^2(c, k) for nominal or ordinal values (Krippendorff 2011)."""
    v = n_v.size
    if level == "nominal":
        return 1.0 - np.eye(v)
    if level == "ordinal":
        # delta^2(c, k) = (sum_{g=c..k} n_g - (n_c + n_k) / 2)^2 for c <= k.
        cum = np.cumsum(n_v)
        lo = np.minimum.outer(np.arange(v), np.arange(v))
        hi = np.maximum.outer(np.arange(v), np.arange(v))
        between = cum[hi] - cum[lo] + n_v[lo]
        return (between - (n_v[:, None] + n_v[None, :]) / 2.0) ** 2
    raise ValueError(f"unknown level of measurement {level!r}; expected 'nominal' or 'ordinal'")


def alpha_from_coincidences(o: np.ndarray, level: Level) -> float | None:
    """Alpha = 1 - (n - 1) * sum(o * d) / sum(n_c n_k d) from a coincidence matrix.

    ``None`` when the matrix is empty or the expected disagreement is 0 (one value only).
    """
    n_v = o.sum(axis=0)
    n = float(n_v.sum())
    if n <= 0:
        return None
    keep = n_v > 0
    o, n_v = o[np.ix_(keep, keep)], n_v[keep]
    if n_v.size < 2:
        return None
    d = _distance_matrix(n_v, level)
    expected = float((np.outer(n_v, n_v) * d).sum())
    if expected <= 0:
        return None
    return float(1.0 - (n - 1.0) * float((o * d).sum()) / expected)


def alpha_from_value_counts(counts: npt.ArrayLike, level: Level) -> float | None:
    """Krippendorff's alpha from a ``units x values`` count matrix.

    Columns are the values in domain order (ordered for ``ordinal``). Returns ``None`` when
    alpha is undefined: no unit has two or more values, or the pairable values are all the
    same (see module docstring). Uses ``krippendorff.alpha(value_counts=...)`` unless the
    matrix is too large for its dense ``units x V x V`` intermediate.
    """
    if level not in ("nominal", "ordinal"):
        raise ValueError(f"unknown level of measurement {level!r}; expected 'nominal' or 'ordinal'")
    c = np.asarray(counts)
    if c.ndim != 2:
        raise ValueError(f"value counts must be a 2-D units x values matrix, got shape {c.shape}")
    if c.size and (c.dtype.kind not in "iub" or c.min() < 0):
        raise ValueError("value counts must be non-negative integers")
    c = c.astype(np.int64, copy=False)
    c = c[c.sum(axis=1) >= 2]
    if c.shape[0] == 0:
        return None
    c = c[:, c.sum(axis=0) > 0]
    n_units, n_values = c.shape
    if n_values < 2:
        return None
    if n_units * n_values * n_values <= PACKAGE_MAX_CELLS:
        return float(krippendorff.alpha(value_counts=c, level_of_measurement=level))
    return alpha_from_coincidences(_coincidences(c), level)


def _alpha_from_labels(
    unit_idx: np.ndarray, codes: np.ndarray, n_units: int, n_values: int, level: Level
) -> float | None:
    if n_units * n_values * n_values <= PACKAGE_MAX_CELLS:
        return alpha_from_value_counts(_count_matrix(unit_idx, codes, n_units, n_values), level)
    # Large domain: never materialise the units x V count matrix either.
    return alpha_from_coincidences(_coincidences_from_labels(unit_idx, codes, n_values), level)


def dimension_alpha(unit_ids: Any, values: Any, dimension: Dimension) -> float | None:
    """Krippendorff's alpha of one dimension from parallel ``unit_ids`` / ``values`` columns.

    One entry per label (a unit labelled by three annotators appears three times). Missing
    values are skipped. ``None`` when undefined (see module docstring). Raises ValueError
    for mismatched lengths or a value outside a fixed domain (naming it).
    """
    unit_idx, n_units = _unit_index(unit_ids)
    codes, domain = encode_values(values, dimension)
    if codes.shape != unit_idx.shape:
        raise ValueError(f"unit_ids has {unit_idx.size} entries but values has {codes.size}")
    return _alpha_from_labels(unit_idx, codes, n_units, len(domain), dimension.level)


@dataclass(frozen=True)
class AttributeMatrix:
    """Desired attributes of every label as a dense boolean matrix (the columnar form).

    ``present[i, j]``: label i selected ``names[j]``; ``answered[i]``: label i answered the
    question at all (``False`` = missing for every attribute; ``None`` = all answered).
    """

    names: tuple[str, ...]
    present: np.ndarray
    answered: np.ndarray | None = None

    def __post_init__(self) -> None:
        present = np.asarray(self.present)
        if present.ndim != 2 or present.shape[1] != len(self.names):
            raise ValueError(f"present must have shape (n_labels, {len(self.names)}), got {present.shape}")
        if self.answered is not None and np.asarray(self.answered).shape != (present.shape[0],):
            raise ValueError(f"answered must have shape ({present.shape[0]},)")

    def __len__(self) -> int:
        return int(np.asarray(self.present).shape[0])

    @classmethod
    def from_lists(cls, desired_attributes: Sequence[Iterable[str] | None]) -> AttributeMatrix:
        """Build from per-label lists (``None`` = unanswered, ``[]`` = none selected).

        One Python pass over the ragged lists is unavoidable for this input; attribute
        strings are coded through a dict on the way. Duplicates in a list count once; a
        ``None`` or ``""`` inside a list is ignored. Names are sorted.
        """
        n = len(desired_attributes)
        answered = np.ones(n, dtype=bool)
        lengths = np.zeros(n, dtype=np.int64)
        lookup: dict[str, int] = {}
        codes: list[int] = []
        for i, labels in enumerate(desired_attributes):
            if labels is None:
                answered[i] = False
                continue
            if isinstance(labels, str):
                raise ValueError(
                    f"desired_attributes[{i}] must be a list of strings or None, got the string {labels!r}"
                )
            before = len(codes)
            codes += [lookup.setdefault(a, len(lookup)) for a in labels if a is not None and a != ""]
            lengths[i] = len(codes) - before
        names = [str(a) for a in lookup]
        order = np.argsort(names, kind="stable")
        rank = np.empty(len(names), dtype=np.int64)
        rank[order] = np.arange(len(names))
        present = np.zeros((n, len(names)), dtype=bool)
        present[np.repeat(np.arange(n), lengths), rank[np.asarray(codes, dtype=np.int64)]] = True
        return cls(names=tuple(names[k] for k in order), present=present, answered=answered)


def desired_attribute_alphas(
    unit_ids: Any,
    desired_attributes: AttributeMatrix | Sequence[Iterable[str] | None],
    attributes: Iterable[str] | None = None,
) -> dict[str, float | None]:
    """Alpha per desired attribute, each a nominal present/absent variable.

    ``desired_attributes`` is an :class:`AttributeMatrix` or one multi-select list per label
    (``None`` = unanswered: missing for every attribute; ``[]`` = none selected: absent for
    every attribute). An attribute is scored over the labels that answered: present if
    selected. ``attributes`` adds attributes to report even if nobody chose them (their
    alpha is ``None``: one value only). Returns ``{attribute: alpha or None}`` sorted by name.
    """
    unit_idx, n_units = _unit_index(unit_ids)
    matrix = (
        desired_attributes
        if isinstance(desired_attributes, AttributeMatrix)
        else AttributeMatrix.from_lists(desired_attributes)
    )
    if len(matrix) != unit_idx.size:
        raise ValueError(f"unit_ids has {unit_idx.size} entries but desired_attributes has {len(matrix)}")
    answered = (
        np.ones(unit_idx.size, dtype=bool) if matrix.answered is None else np.asarray(matrix.answered, dtype=bool)
    )
    present = np.asarray(matrix.present, dtype=bool) & answered[:, None]
    answered_per_unit = np.bincount(unit_idx[answered], minlength=n_units)
    report: dict[str, float | None] = {}
    for j, name in enumerate(matrix.names):
        present_per_unit = np.bincount(unit_idx[present[:, j]], minlength=n_units)
        counts = np.stack([answered_per_unit - present_per_unit, present_per_unit], axis=1)
        report[name] = alpha_from_value_counts(counts, "nominal")
    for name in attributes or ():
        report.setdefault(name, None)
    return dict(sorted(report.items()))


# --------------------------------------------------------------------------- label tables

_FIELDS = ("preference", "objectivity", "task_category", "controversiality")


@dataclass(frozen=True)
class LabelColumns:
    """All labels as parallel columns, one entry per (unit, annotator) label.

    ``unit_ids`` / ``annotator_ids``: hashable scalars of one type (ints or strings).
    The four dimension columns hold codes or ``None``; ``desired_attributes`` is an
    :class:`AttributeMatrix` or one list of strings per label (``None`` = unanswered).
    Any column may be ``None`` (dimension not labelled).
    """

    unit_ids: Any
    annotator_ids: Any
    preference: Any = None
    objectivity: Any = None
    task_category: Any = None
    controversiality: Any = None
    desired_attributes: AttributeMatrix | Sequence[Iterable[str] | None] | None = None

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]]) -> LabelColumns:
        """Columns from mappings with keys ``unit_id``, ``annotator_id`` and the dimension names."""
        rows = list(records)
        return cls(
            unit_ids=np.asarray([r["unit_id"] for r in rows]),
            annotator_ids=np.asarray([r["annotator_id"] for r in rows]),
            **{f: np.asarray([r.get(f) for r in rows], dtype=object) for f in _FIELDS},
            desired_attributes=[r.get(DESIRED_ATTRIBUTES) for r in rows],
        )

    def __len__(self) -> int:
        return int(np.asarray(self.unit_ids).shape[0])


def _check_one_label_per_annotator(unit_ids: Any, annotator_ids: Any) -> tuple[np.ndarray, int, np.ndarray, np.ndarray]:
    unit_idx, n_units = _unit_index(unit_ids)
    annotators = _as_1d("annotator_ids", annotator_ids)
    if annotators.shape != unit_idx.shape:
        raise ValueError(f"unit_ids has {unit_idx.size} entries but annotator_ids has {annotators.size}")
    if annotators.size == 0:
        return unit_idx, n_units, np.zeros(0, dtype=np.int64), annotators
    distinct, ann_idx = np.unique(annotators, return_inverse=True)
    ann_idx = ann_idx.reshape(-1).astype(np.int64)
    key = np.sort(unit_idx * distinct.size + ann_idx)
    dup = np.flatnonzero(key[1:] == key[:-1])
    if dup.size:
        u, a = divmod(int(key[dup[0]]), distinct.size)
        unit = _py(np.unique(np.asarray(unit_ids))[u])
        raise ValueError(f"annotator {_py(distinct[a])!r} labelled unit {unit!r} more than once")
    return unit_idx, n_units, ann_idx, distinct


def agreement_report(labels: LabelColumns | Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Krippendorff's alpha of every dimension at once.

    Returns ``{"preference": a, "objectivity": a, "task_category": a, "controversiality": a,
    "desired_attributes": {attribute: a}, "n_units": int, "n_labels": int}`` where each
    ``a`` is a float or ``None`` (undefined, or the column was not given). ``n_units``
    counts distinct unit ids, ``n_labels`` label records. Raises ValueError when an
    annotator labelled a unit twice or a value is outside its dimension's domain.
    """
    cols = labels if isinstance(labels, LabelColumns) else LabelColumns.from_records(labels)
    unit_idx, n_units, _, _ = _check_one_label_per_annotator(cols.unit_ids, cols.annotator_ids)
    report: dict[str, Any] = {}
    for dim in DIMENSIONS:
        column = getattr(cols, dim.name)
        if column is None:
            report[dim.name] = None
            continue
        codes, domain = encode_values(column, dim)
        if codes.shape != unit_idx.shape:
            raise ValueError(f"{dim.name} has {codes.size} entries, expected {unit_idx.size}")
        report[dim.name] = _alpha_from_labels(unit_idx, codes, n_units, len(domain), dim.level)
    report[DESIRED_ATTRIBUTES] = (
        {} if cols.desired_attributes is None else desired_attribute_alphas(cols.unit_ids, cols.desired_attributes)
    )
    report["n_units"] = n_units
    report["n_labels"] = int(unit_idx.size)
    return report


# --------------------------------------------------------------------------- per annotator


@dataclass(frozen=True)
class AnnotatorAgreement:
    """How one annotator's preference labels sit against everybody else's.

    * ``n_labels``: labels by this annotator; ``n_decided``: those not undecidable/missing.
    * ``n_compared``: decided labels *by other annotators* on the units this annotator
      decided (each pairing of one of their labels with one of this annotator's).
    * ``agreement_rate``: fraction of those with the same side (A or B; strength ignored);
      ``None`` when ``n_compared`` is 0.
    * ``alpha_all``: preference alpha (ordinal) of all labels; ``alpha_without``: the same
      with this annotator's labels removed; ``alpha_delta = alpha_without - alpha_all``.
      A clearly positive delta means the pool agrees better without them: out of line.
      ``None`` where either alpha is undefined.
    """

    annotator_id: Hashable
    n_labels: int
    n_decided: int
    n_compared: int
    agreement_rate: float | None
    alpha_all: float | None
    alpha_without: float | None
    alpha_delta: float | None


def annotator_agreement(unit_ids: Any, annotator_ids: Any, preferences: Any) -> dict[Hashable, AnnotatorAgreement]:
    """Per-annotator preference agreement (see :class:`AnnotatorAgreement` for the fields).

    Pairwise rates are computed for all annotators at once with bincounts; ``alpha_without``
    updates the full coincidence matrix by only the units each annotator touched, so the
    cost is O(labels x V^2) in total rather than one full alpha per annotator.
    Raises ValueError on duplicate (unit, annotator) labels or unknown preference codes.
    """
    unit_idx, n_units, ann_idx, annotators = _check_one_label_per_annotator(unit_ids, annotator_ids)
    codes, domain = encode_values(preferences, PREFERENCE)
    if codes.shape != unit_idx.shape:
        raise ValueError(f"preferences has {codes.size} entries, expected {unit_idx.size}")
    n_ann = int(annotators.size)
    n_values = len(domain)
    decided = codes >= 0
    side_b = codes >= PREFERENCE_LEVELS.index(B_SLIGHTLY)

    # Pairwise side agreement: a label on unit u with side s agrees with count_s[u] - 1 others.
    count_a = np.bincount(unit_idx[decided & ~side_b], minlength=n_units)
    count_b = np.bincount(unit_idx[decided & side_b], minlength=n_units)
    u_d, a_d, b_d = unit_idx[decided], ann_idx[decided], side_b[decided]
    same = np.where(b_d, count_b[u_d], count_a[u_d]) - 1
    others = count_a[u_d] + count_b[u_d] - 1
    agree_sum = np.bincount(a_d, weights=same, minlength=n_ann)
    compared_sum = np.bincount(a_d, weights=others, minlength=n_ann)
    n_labels = np.bincount(ann_idx, minlength=n_ann)
    n_decided = np.bincount(a_d, minlength=n_ann)

    # Alpha without each annotator: o_without = o_all - o(touched rows) + o(touched rows minus them).
    counts = _count_matrix(unit_idx, codes, n_units, n_values)
    o_all = _coincidences(counts)
    alpha_all = alpha_from_value_counts(counts, PREFERENCE.level)
    order = np.argsort(a_d, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(n_decided)])
    codes_d = codes[decided]

    result: dict[Hashable, AnnotatorAgreement] = {}
    for a in range(n_ann):
        sel = order[bounds[a] : bounds[a + 1]]
        rows = counts[u_d[sel]]
        reduced = rows.copy()
        reduced[np.arange(sel.size), codes_d[sel]] -= 1
        o_without = o_all - _coincidences(rows) + _coincidences(reduced)
        alpha_without = alpha_from_coincidences(o_without, PREFERENCE.level)
        compared = int(compared_sum[a])
        annotator_id = _py(annotators[a])
        result[annotator_id] = AnnotatorAgreement(
            annotator_id=annotator_id,
            n_labels=int(n_labels[a]),
            n_decided=int(n_decided[a]),
            n_compared=compared,
            agreement_rate=float(agree_sum[a] / compared) if compared else None,
            alpha_all=alpha_all,
            alpha_without=alpha_without,
            alpha_delta=(None if alpha_all is None or alpha_without is None else alpha_without - alpha_all),
        )
    return result
