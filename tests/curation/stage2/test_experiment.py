"""The pure parts of bench/stage2_experiment.py (splits, injected flips, precision/recall, Table 19 form).

No model and no database: the filter outcomes come from ``curation.stage2.rules`` on fixed probabilities.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from curation.stage2 import rules

ROOT = Path(__file__).resolve().parents[3]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("stage2_experiment", ROOT / "bench" / "stage2_experiment.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module through sys.modules
    spec.loader.exec_module(module)
    return module


exp = _load()

# Six pool pairs after the injection; pairs 0 and 3 had their labels flipped by it.
P_BEST = [0.1, 0.8, 0.3, 0.3, 0.6, 0.35]
P_GOLD = [0.2, 0.7, 0.45, 0.6, 0.7, 0.42]
INJECTED = [0, 3]


def _rows(n: int, tag: str) -> list[dict[str, str]]:
    return [{"id": f"{tag}{i}", "prompt": f"p{i}", "chosen": f"c{i}", "rejected": f"r{i}"} for i in range(n)]


def test_module_imports_no_torch_at_top_level() -> None:
    # The pure parts run in the test process; the script imports torch only inside main().
    tree = ast.parse((ROOT / "bench" / "stage2_experiment.py").read_text(encoding="utf-8"))
    top = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            top.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            top.add(node.module.split(".")[0])
    assert "curation" in top
    assert not top & {"torch", "transformers", "rewardmodel", "django"}


def test_splits_set_the_test_split_aside_per_file_and_are_disjoint() -> None:
    files = [_rows(10, "a"), _rows(20, "b")]
    s = exp.split_rows(files, seed=3, test_frac=0.2, n_verified=4, n_silver=5, n_pool=0)
    assert (len(s.test), len(s.verified), len(s.silver), len(s.pool)) == (6, 4, 5, 15)
    assert sum(r["id"].startswith("a") for r in s.test) == 2
    ids = [r["id"] for part in (s.test, s.verified, s.silver, s.pool) for r in part]
    assert sorted(ids) == sorted(r["id"] for f in files for r in f)
    again = exp.split_rows(files, seed=3, test_frac=0.2, n_verified=4, n_silver=5, n_pool=0)
    assert [r["id"] for r in again.pool] == [r["id"] for r in s.pool]
    other = exp.split_rows(files, seed=4, test_frac=0.2, n_verified=4, n_silver=5, n_pool=0)
    assert [r["id"] for r in other.test] != [r["id"] for r in s.test]
    # Test split independent of the pool size asked for.
    small = exp.split_rows(files, seed=3, test_frac=0.2, n_verified=4, n_silver=5, n_pool=7)
    assert [r["id"] for r in small.test] == [r["id"] for r in s.test]
    assert len(small.pool) == 7


def test_splits_refuse_sizes_that_do_not_fit() -> None:
    with pytest.raises(ValueError, match="do not fit the 24 non-test pairs"):
        exp.split_rows([_rows(10, "a"), _rows(20, "b")], seed=0, test_frac=0.2, n_verified=10, n_silver=10, n_pool=5)
    with pytest.raises(ValueError, match="test_frac"):
        exp.split_rows([_rows(10, "a")], seed=0, test_frac=0.0, n_verified=1, n_silver=0, n_pool=0)


def test_injection_picks_exactly_the_fraction() -> None:
    chosen = exp.choose_injected(7, 0.2, seed=1)
    assert len(chosen) == 1 and 0 <= chosen[0] < 7
    ten = exp.choose_injected(10, 0.2, seed=5)
    assert len(set(ten)) == 2 and ten == sorted(ten)
    assert exp.choose_injected(10, 0.2, seed=5) == ten
    with pytest.raises(ValueError, match="inject_frac"):
        exp.choose_injected(10, 1.5, seed=0)


def test_flips_swap_the_label_and_turn_p_into_its_complement() -> None:
    assert exp.flip_record({"prompt": "x", "chosen": "a", "rejected": "b", "id": 1}) == {
        "prompt": "x",
        "chosen": "b",
        "rejected": "a",
        "id": 1,
    }
    assert exp.flip_p([0.75, 0.5, 0.25], [0, 2]) == [0.25, 0.5, 0.75]


def test_filter_outcomes_follow_the_stage2_rule() -> None:
    configs = exp.policies([0.0, 0.1])
    assert list(configs) == ["paper", "strict (margin 0)", "strict (margin 0.1)"]
    K, F, D = rules.KEPT, rules.FLIPPED, rules.DISCARDED
    assert exp.filter_outcomes(P_BEST, P_GOLD, configs["paper"]) == [F, K, F, F, K, F]
    assert exp.filter_outcomes(P_BEST, P_GOLD, configs["strict (margin 0)"]) == [F, K, F, D, K, F]
    assert exp.filter_outcomes(P_BEST, P_GOLD, configs["strict (margin 0.1)"]) == [F, K, D, D, K, D]
    with pytest.raises(ValueError, match="differ in length"):
        exp.filter_outcomes([0.5], [0.5, 0.5], configs["paper"])


def test_precision_and_recall_against_the_injected_flips() -> None:
    configs = exp.policies([0.0, 0.1])
    reports = {
        name: exp.injection_report(exp.filter_outcomes(P_BEST, P_GOLD, c), INJECTED) for name, c in configs.items()
    }
    assert reports["paper"] == {
        "flipped": {"n": 4, "hits": 2, "precision": 0.5, "recall": 1.0},
        "discarded": {"n": 0, "hits": 0, "precision": None, "recall": 0.0},
        "not kept": {"n": 4, "hits": 2, "precision": 0.5, "recall": 1.0},
    }
    assert reports["strict (margin 0)"] == {
        "flipped": {"n": 3, "hits": 1, "precision": 1 / 3, "recall": 0.5},
        "discarded": {"n": 1, "hits": 1, "precision": 1.0, "recall": 0.5},
        "not kept": {"n": 4, "hits": 2, "precision": 0.5, "recall": 1.0},
    }
    assert reports["strict (margin 0.1)"]["flipped"] == {"n": 1, "hits": 1, "precision": 1.0, "recall": 0.5}
    assert reports["strict (margin 0.1)"]["discarded"] == {"n": 3, "hits": 1, "precision": 1 / 3, "recall": 0.5}
    assert exp.precision_recall(set(), set()) == {"n": 0, "hits": 0, "precision": None, "recall": None}

    text = exp.md_injection({"paper": reports["paper"]}, n_injected=2, n_pool=6)
    assert text.splitlines() == [
        "Injected flips: 2 of 6 pool pairs (a random guess has precision 33.3%).",
        "",
        "| policy | set | pairs | injected among them | precision | recall |",
        "|---|---|---|---|---|---|",
        "| paper | flipped | 4 | 2 | 50.0% | 100.0% |",
        "| paper | discarded | 0 | 0 | — | 0.0% |",
        "| paper | not kept | 4 | 2 | 50.0% | 100.0% |",
    ]


def test_agreement_table_in_the_papers_form() -> None:
    config = exp.policies([])["paper"]
    outcomes = exp.filter_outcomes(P_BEST, P_GOLD, config)
    rows = exp.agreement_rows(P_BEST, P_GOLD, outcomes, INJECTED)
    assert [r.label_agrees for r in rows] == [False, True, True, False, True, True]
    table = exp.agreement_table(rows, config)
    assert table["n"] == 6
    assert table["filters"]["best+gold"] == {
        "kept": {"n": 2, "agree": 2, "agreement": 1.0},
        "flipped": {"n": 4, "agree": 2, "agreement": 0.5},
        "discarded": 0,
    }
    assert table["filters"]["gold only"]["kept"] == {"n": 3, "agree": 2, "agreement": 2 / 3}
    assert table["filters"]["gold only"]["flipped"] == {"n": 3, "agree": 1, "agreement": 1 / 3}
    assert exp.md_agreement({"paper": table}).splitlines()[2:] == [
        "| paper | best+gold | 2 | 100.0% | 4 | 50.0% | 0 |",
        "| paper | gold only | 3 | 66.7% | 3 | 33.3% | 0 |",
        "| paper | best only | 2 | 100.0% | 4 | 50.0% | 0 |",
    ]


def test_retrain_sets_keep_labels_and_swap_the_flipped_ones() -> None:
    pool = _rows(3, "p")
    sets = exp.retrain_sets(pool, [rules.KEPT, rules.FLIPPED, rules.DISCARDED])
    assert [r["id"] for r in sets["raw pool"]] == ["p0", "p1", "p2"]
    assert sets["kept"] == [pool[0]]
    assert sets["kept+flipped"] == [pool[0], {"id": "p1", "prompt": "p1", "chosen": "r1", "rejected": "c1"}]
    assert exp.outcome_counts([rules.KEPT, rules.FLIPPED, rules.KEPT]) == {"kept": 2, "flipped": 1, "discarded": 0}
    assert exp.md_outcomes({"x": {"kept": 2, "flipped": 1, "discarded": 0}}).splitlines()[2] == "| x | 2 | 1 | 0 |"


def test_accuracy_table_lists_every_subset() -> None:
    result = {
        "model": "gold RM",
        "data": "verified slice",
        "pairs": 300,
        "epochs": 2.0,
        "test": {
            "n": 3,
            "accuracy": 2 / 3,
            "per_subset": {"tldr": {"n": 2, "accuracy": 0.5}, "cnndm": {"n": 1, "accuracy": 1.0}},
        },
    }
    lines = exp.md_accuracy([result]).splitlines()
    assert lines[0] == "| model | trained on | pairs | epochs | test accuracy | cnndm | tldr |"
    assert lines[2] == "| gold RM | verified slice | 300 | 2.00 | 0.667 (n=3) | 1.000 (n=1) | 0.500 (n=2) |"


def test_p_spread_reports_quartiles_and_the_confident_share() -> None:
    assert exp.p_spread([0.7, 0.1, 0.55, 0.5]) == {
        "min": 0.1,
        "q25": 0.5,
        "median": 0.55,
        "q75": 0.7,
        "max": 0.7,
        "beyond 0.1": 0.5,
    }
    with pytest.raises(ValueError, match="no probabilities"):
        exp.p_spread([])
