"""Krippendorff's alpha and annotator agreement (pure module, no database)."""

from __future__ import annotations

import math

import krippendorff
import numpy as np
import pytest

from curation import agreement
from curation.agreement import (
    CONTROVERSIALITY,
    OBJECTIVITY,
    PREFERENCE,
    TASK_CATEGORY,
    AttributeMatrix,
    Dimension,
    LabelColumns,
    agreement_report,
    alpha_from_value_counts,
    annotator_agreement,
    desired_attribute_alphas,
    dimension_alpha,
    value_counts,
)

NUMBERS = Dimension("numbers", "nominal", ("1", "2", "3", "4", "5"))
NUMBERS_ORDINAL = Dimension("numbers", "ordinal", ("1", "2", "3", "4", "5"))

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C:
# four observers, 12 units, values 1..5, "." = missing.
KRIPPENDORFF_2011 = [
    "1 2 3 3 2 1 4 1 2 . . .",
    "1 2 3 3 2 2 4 1 2 5 . 3",
    ". 3 3 3 2 3 4 2 2 5 1 .",
    "1 2 3 3 2 4 4 1 2 5 1 .",
]


def _columns(matrix: list[str]) -> tuple[list[int], list[str], list[str | None]]:
    """observers x units text matrix -> (unit_ids, annotator_ids, values) label columns."""
    units: list[int] = []
    annotators: list[str] = []
    values: list[str | None] = []
    for o, row in enumerate(matrix):
        for u, v in enumerate(row.split()):
            units.append(u)
            annotators.append(f"obs{o}")
            values.append(None if v == "." else v)
    return units, annotators, values


# --------------------------------------------------------------------------- hand-computed


def test_nominal_alpha_matches_krippendorff_2011_worked_example() -> None:
    # Coincidences o_ck = sum_u (c-k pairs in u) / (m_u - 1); unit 12 has one value: unpairable.
    #   o11 = 3 (u1) + 2 (u8) + 2 (u11) = 7      o22 = 2 (u2) + 4 (u5) + 4 (u9) = 10
    #   o33 = 4 + 4 = 8   o44 = 4   o55 = 3      off-diagonal total = 40 - 32 = 8
    #   n_c = 9, 13, 10, 5, 3   (n = 40)
    # alpha = 1 - (n-1) * sum_{c!=k} o_ck / (n^2 - sum n_c^2)
    #       = 1 - 39 * 8 / (1600 - 384) = 1 - 312/1216 = 0.7434...
    units, _, values = _columns(KRIPPENDORFF_2011)
    alpha = dimension_alpha(units, values, NUMBERS)
    assert alpha == pytest.approx(1 - 312 / 1216, abs=1e-12)
    assert round(alpha, 3) == 0.743


def test_ordinal_alpha_matches_krippendorff_2011_worked_example() -> None:
    # Ordinal metric d(c,k) = (sum_{g=c..k} n_g - (n_c + n_k)/2)^2 with n = 9, 13, 10, 5, 3:
    #   d12=121 d13=506.25 d14=900 d15=1156 d23=132.25 d24=361 d25=529 d34=56.25 d35=132.25 d45=16
    # observed  sum o_ck d_ck = 2 * (4/3*121 + 1/3*506.25 + 1/3*900 + 4/3*132.25 + 1/3*361 + 1/3*56.25) = 1891
    # expected  sum n_c n_k d_ck = 2 * 199740 = 399480
    # alpha = 1 - 39 * 1891 / 399480 = 0.8153...
    units, _, values = _columns(KRIPPENDORFF_2011)
    alpha = dimension_alpha(units, values, NUMBERS_ORDINAL)
    assert alpha == pytest.approx(1 - 39 * 1891 / 399480, abs=1e-12)
    assert round(alpha, 3) == 0.815


def test_binary_two_coder_example() -> None:
    # Krippendorff (2011) section A: two observers, ten units, binary values.
    #   units with 0-0: 5 -> o00 = 10; 1-1: 1 -> o11 = 2; mismatches: 4 -> o01 = o10 = 4
    #   n0 = 14, n1 = 6, n = 20: alpha = 1 - 19 * 4 / (14 * 6) = 1 - 76/84 = 0.095
    a = ["0", "1", "0", "0", "0", "0", "0", "0", "1", "0"]
    b = ["1", "1", "1", "0", "0", "1", "0", "0", "0", "0"]
    dim = Dimension("binary", "nominal", ("0", "1"))
    alpha = dimension_alpha(list(range(10)) * 2, a + b, dim)
    assert alpha == pytest.approx(8 / 84, abs=1e-12)


def test_tiny_preference_case_nominal_and_ordinal() -> None:
    # Two annotators, preference codes 0=A_CLEARLY 1=A_SLIGHTLY 2=B_SLIGHTLY 3=B_CLEARLY:
    #   u1 (0,0)  u2 (1,0)  u3 (2,3)  u4 (3,3)
    #   o00 = 2, o01 = o10 = 1, o23 = o32 = 1, o33 = 2; n_c = 3, 1, 1, 3 (n = 8)
    # nominal: alpha = 1 - 7 * 4 / (64 - 20) = 16/44
    # ordinal: d01 = (3+1-2)^2 = 4, d23 = 4, d02 = 9, d03 = 25, d12 = 1, d13 = 9
    #   observed 2*(4 + 4) = 16; expected 2*(3*4 + 3*9 + 9*25 + 1 + 3*9 + 3*4) = 608
    #   alpha = 1 - 7 * 16 / 608 = 31/38
    units = [1, 1, 2, 2, 3, 3, 4, 4]
    values = ["A_CLEARLY", "A_CLEARLY", "A_SLIGHTLY", "A_CLEARLY", "B_SLIGHTLY", "B_CLEARLY", "B_CLEARLY", "B_CLEARLY"]
    assert dimension_alpha(units, values, PREFERENCE) == pytest.approx(31 / 38, abs=1e-12)
    nominal = Dimension("pref_nominal", "nominal", PREFERENCE.domain, PREFERENCE.missing)
    assert dimension_alpha(units, values, nominal) == pytest.approx(16 / 44, abs=1e-12)


def test_undecidable_counts_as_missing() -> None:
    units = [1, 1, 2, 2, 3, 3, 4, 4]
    values = ["A_CLEARLY", "A_CLEARLY", "A_SLIGHTLY", "A_CLEARLY", "B_SLIGHTLY", "B_CLEARLY", "B_CLEARLY", "B_CLEARLY"]
    # u5 has one decided value left (unpairable), u6 none at all: alpha unchanged.
    units += [5, 5, 6, 6, 6]
    values += ["A_CLEARLY", "UNDECIDABLE", "UNDECIDABLE", "UNDECIDABLE", None]
    assert dimension_alpha(units, values, PREFERENCE) == pytest.approx(31 / 38, abs=1e-12)
    counts, domain = value_counts(units, values, PREFERENCE)
    assert domain == PREFERENCE.domain
    assert counts.shape == (6, 4)
    assert counts[4].tolist() == [1, 0, 0, 0]
    assert counts[5].tolist() == [0, 0, 0, 0]


def test_missing_values_none_empty_and_nan_are_skipped() -> None:
    units, _, values = _columns(KRIPPENDORFF_2011)
    with_empty = ["" if v is None else v for v in values]
    with_nan = np.array([float("nan") if v is None else float(v) for v in values])
    assert dimension_alpha(units, with_empty, NUMBERS) == pytest.approx(1 - 312 / 1216)
    # Numeric codes work too: 1.0 -> "1.0" is not in the domain, so use a free nominal set.
    free = Dimension("free", "nominal", None)
    assert dimension_alpha(units, with_nan, free) == pytest.approx(1 - 312 / 1216)


# --------------------------------------------------------------------------- degenerate


def test_no_pairable_unit_gives_none() -> None:
    assert dimension_alpha([1, 2, 3], ["factual", "opinion", "factual"], OBJECTIVITY) is None
    assert dimension_alpha([1, 1, 2], ["factual", None, "opinion"], OBJECTIVITY) is None
    assert dimension_alpha([], [], OBJECTIVITY) is None


def test_single_distinct_value_gives_none() -> None:
    # D_e = 0, alpha = 0/0: undefined; krippendorff.alpha itself raises here.
    assert dimension_alpha([1, 1, 2, 2], ["low"] * 4, CONTROVERSIALITY) is None
    # "opinion" only occurs in an unpairable unit, so the pairable values are all "factual".
    assert dimension_alpha([1, 1, 2, 2, 3], ["factual"] * 4 + ["opinion"], OBJECTIVITY) is None


def test_unknown_value_is_rejected_by_name() -> None:
    with pytest.raises(ValueError, match="'B_MUCH'"):
        dimension_alpha([1, 1], ["A_CLEARLY", "B_MUCH"], PREFERENCE)


def test_mismatched_lengths_are_rejected() -> None:
    with pytest.raises(ValueError, match="entries"):
        dimension_alpha([1, 1, 2], ["low", "high"], CONTROVERSIALITY)


def test_value_counts_matrix_validation() -> None:
    with pytest.raises(ValueError, match="2-D"):
        alpha_from_value_counts(np.array([1, 2, 3]), "nominal")
    with pytest.raises(ValueError, match="non-negative"):
        alpha_from_value_counts(np.array([[1, -1]]), "nominal")
    with pytest.raises(ValueError, match="level"):
        alpha_from_value_counts(np.array([[1, 1]]), "interval")  # type: ignore[arg-type]


@pytest.mark.parametrize("level", ["nominal", "ordinal"])
def test_large_domain_path_matches_package(level: str, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(7)
    counts = rng.multinomial(3, np.full(12, 1 / 12), size=400)
    counts[::5] = rng.multinomial(1, np.full(12, 1 / 12), size=80)  # some unpairable rows
    reference = krippendorff.alpha(value_counts=counts, level_of_measurement=level)
    monkeypatch.setattr(agreement, "PACKAGE_MAX_CELLS", 0)
    assert alpha_from_value_counts(counts, level) == pytest.approx(reference, abs=1e-10)  # type: ignore[arg-type]


@pytest.mark.parametrize("dim", [NUMBERS, NUMBERS_ORDINAL])
def test_label_path_for_large_domains_matches_the_package_path(dim: Dimension, monkeypatch: pytest.MonkeyPatch) -> None:
    units, _, values = _columns(KRIPPENDORFF_2011)
    expected = dimension_alpha(units, values, dim)
    monkeypatch.setattr(agreement, "PACKAGE_MAX_CELLS", 0)
    assert dimension_alpha(units, values, dim) == pytest.approx(expected, abs=1e-12)


def test_unit_order_does_not_matter() -> None:
    units, _, values = _columns(KRIPPENDORFF_2011)
    order = np.random.default_rng(0).permutation(len(units))
    shuffled = dimension_alpha(np.asarray(units)[order], np.asarray(values, dtype=object)[order], NUMBERS)
    as_strings = dimension_alpha([f"pair-{u}" for u in units], values, NUMBERS)
    assert shuffled == pytest.approx(1 - 312 / 1216) and as_strings == pytest.approx(1 - 312 / 1216)


def test_free_nominal_task_category() -> None:
    units = [1, 1, 1, 2, 2, 2, 3, 3]
    cats = ["math", "math", "code", "poetry", "poetry", "poetry", "code", "code"]
    # u1 {math: 2, code: 1}, u2 {poetry: 3}, u3 {code: 2}
    #   o_mm = 2/2 = 1, o_mc = o_cm = 2/2 = 1, o_pp = 6/2 = 3, o_cc = 2/1 = 2
    #   n_code = 3, n_math = 2, n_poetry = 3 (n = 8): alpha = 1 - 7 * 2 / (64 - 9 - 4 - 9) = 2/3
    expected = 2 / 3
    assert dimension_alpha(units, cats, TASK_CATEGORY) == pytest.approx(expected)


# --------------------------------------------------------------------------- desired attributes


def test_desired_attributes_are_split_into_binary_variables() -> None:
    units = [1, 1, 2, 2, 3, 3, 4, 4]
    attrs: list[list[str] | None] = [
        ["accuracy", "safety"],
        ["accuracy"],
        ["accuracy"],
        ["accuracy", "accuracy"],  # duplicate inside a list counts once
        [],
        ["safety"],
        None,
        ["accuracy"],  # unanswered: unit 4 is unpairable
    ]
    # accuracy: u1 (1,1) u2 (1,1) u3 (0,0) -> perfect agreement with both values present -> 1.0
    # safety:   u1 (1,0) u2 (0,0) u3 (0,1): o00 = 2, o01 = o10 = 2; n0 = 4, n1 = 2, n = 6
    #           alpha = 1 - 5 * 4 / (36 - 16 - 4) = -0.25
    result = desired_attribute_alphas(units, attrs, attributes=["originality"])
    assert result["accuracy"] == pytest.approx(1.0)
    assert result["safety"] == pytest.approx(-0.25)
    assert result["originality"] is None  # nobody chose it: one value only
    assert list(result) == ["accuracy", "originality", "safety"]


def test_desired_attributes_as_a_matrix_give_the_same_alphas() -> None:
    units = [1, 1, 2, 2, 3, 3, 4, 4]
    present = np.array([[1, 1], [1, 0], [1, 0], [1, 0], [0, 0], [0, 1], [1, 1], [1, 0]], dtype=bool)
    answered = np.array([True] * 6 + [False, True])  # label 7 unanswered: its row is ignored
    result = desired_attribute_alphas(units, AttributeMatrix(("accuracy", "safety"), present, answered))
    assert result == {"accuracy": pytest.approx(1.0), "safety": pytest.approx(-0.25)}
    lists = AttributeMatrix.from_lists([["safety", "accuracy"], None, [], ["safety", "safety", ""]])
    assert lists.names == ("accuracy", "safety")
    assert lists.present.tolist() == [[True, True], [False, False], [False, False], [False, True]]
    assert lists.answered is not None and lists.answered.tolist() == [True, False, True, True]
    with pytest.raises(ValueError, match="shape"):
        AttributeMatrix(("a",), np.zeros((3, 2), dtype=bool))


def test_desired_attributes_reject_a_bare_string() -> None:
    with pytest.raises(ValueError, match="desired_attributes\\[1\\]"):
        desired_attribute_alphas([1, 1], [["safety"], "safety"])


# --------------------------------------------------------------------------- report


def _records() -> list[dict[str, object]]:
    rows = [
        (1, "ann", "A_CLEARLY", "factual", "math", "low", ["accuracy"]),
        (1, "bob", "A_SLIGHTLY", "factual", "math", "low", ["accuracy"]),
        (1, "cat", "A_CLEARLY", "factual", "math", "medium", ["accuracy", "safety"]),
        (2, "ann", "B_CLEARLY", "opinion", "creative_writing", "high", ["originality"]),
        (2, "bob", "B_CLEARLY", "opinion", "creative_writing", "high", []),
        (2, "cat", "UNDECIDABLE", "open_ended", "creative_writing", "high", ["originality"]),
        (3, "ann", "B_SLIGHTLY", "factual", "code", "low", ["accuracy"]),
        (3, "bob", "A_SLIGHTLY", "factual", "code", "medium", None),
        (4, "ann", "A_CLEARLY", None, "code", "low", ["safety"]),
    ]
    keys = (
        "unit_id",
        "annotator_id",
        "preference",
        "objectivity",
        "task_category",
        "controversiality",
        "desired_attributes",
    )
    return [dict(zip(keys, r, strict=True)) for r in rows]


def test_agreement_report_computes_every_dimension() -> None:
    records = _records()
    report = agreement_report(records)
    units = [r["unit_id"] for r in records]
    for dim in (PREFERENCE, OBJECTIVITY, TASK_CATEGORY, CONTROVERSIALITY):
        expected = dimension_alpha(units, [r[dim.name] for r in records], dim)
        assert report[dim.name] == (pytest.approx(expected) if expected is not None else None)
    assert report["task_category"] == pytest.approx(1.0)
    assert report["n_units"] == 4
    assert report["n_labels"] == 9
    assert set(report["desired_attributes"]) == {"accuracy", "originality", "safety"}
    assert report["desired_attributes"] == desired_attribute_alphas(units, [r["desired_attributes"] for r in records])


def test_agreement_report_accepts_columns_and_missing_dimensions() -> None:
    cols = LabelColumns(
        unit_ids=np.array([1, 1, 2, 2]),
        annotator_ids=np.array([10, 11, 10, 11]),
        preference=np.array(["A_CLEARLY", "A_CLEARLY", "B_CLEARLY", "B_SLIGHTLY"]),
    )
    report = agreement_report(cols)
    assert report["preference"] is not None
    assert report["objectivity"] is None
    assert report["desired_attributes"] == {}
    assert (report["n_units"], report["n_labels"]) == (2, 4)


def test_agreement_report_rejects_two_labels_by_one_annotator_on_a_unit() -> None:
    records = _records() + [dict(_records()[0])]
    with pytest.raises(ValueError, match="'ann' labelled unit 1 more than once"):
        agreement_report(records)


# --------------------------------------------------------------------------- per annotator


def test_annotator_agreement_pairwise_rates_by_hand() -> None:
    # u1: a=A, b=A, c=B     u2: a=B, b=B, c=A     u3: a=A, b=undecidable, c=A
    # a agrees with b on u1, u2 and with c on u3: 3 of 5 compared labels
    # b agrees with a on u1, u2; its u3 label is undecided: 2 of 4
    # c agrees only with a on u3: 1 of 5
    units = [1, 1, 1, 2, 2, 2, 3, 3, 3]
    anns = ["a", "b", "c"] * 3
    prefs = [
        "A_CLEARLY",
        "A_SLIGHTLY",
        "B_CLEARLY",
        "B_SLIGHTLY",
        "B_CLEARLY",
        "A_SLIGHTLY",
        "A_CLEARLY",
        "UNDECIDABLE",
        "A_CLEARLY",
    ]
    result = annotator_agreement(units, anns, prefs)
    assert {k: (v.n_compared, v.agreement_rate) for k, v in result.items()} == {
        "a": (5, pytest.approx(0.6)),
        "b": (4, pytest.approx(0.5)),
        "c": (5, pytest.approx(0.2)),
    }
    assert result["b"].n_labels == 3 and result["b"].n_decided == 2
    for ann, stats in result.items():
        keep = [i for i, x in enumerate(anns) if x != ann]
        expected = dimension_alpha([units[i] for i in keep], [prefs[i] for i in keep], PREFERENCE)
        assert stats.alpha_without == pytest.approx(expected)
        assert stats.alpha_all == pytest.approx(dimension_alpha(units, prefs, PREFERENCE))
    assert max(result.values(), key=lambda s: s.alpha_delta or -math.inf).annotator_id == "c"


def test_annotator_agreement_flags_the_noisy_annotator() -> None:
    rng = np.random.default_rng(3)
    n_units, pool = 600, 8
    truth = rng.integers(0, 4, n_units)
    units = np.repeat(np.arange(n_units), 3)
    anns = np.concatenate([rng.choice(pool, 3, replace=False) for _ in range(n_units)])
    codes = np.repeat(truth, 3)
    noisy = rng.random(codes.size) < np.where(anns == 5, 0.7, 0.1)
    codes = np.where(noisy, rng.integers(0, 4, codes.size), codes)
    prefs = np.array(PREFERENCE.domain + ("UNDECIDABLE",))[np.where(rng.random(codes.size) < 0.05, 4, codes)]
    result = annotator_agreement(units, anns, prefs)
    assert min(result.values(), key=lambda s: s.agreement_rate or 1).annotator_id == 5
    assert max(result.values(), key=lambda s: s.alpha_delta or -1).annotator_id == 5
    for ann in (0, 5):
        keep = anns != ann
        assert result[ann].alpha_without == pytest.approx(dimension_alpha(units[keep], prefs[keep], PREFERENCE))


def test_annotator_agreement_rejects_duplicates() -> None:
    with pytest.raises(ValueError, match="more than once"):
        annotator_agreement([1, 1], ["a", "a"], ["A_CLEARLY", "B_CLEARLY"])
