"""Batched scoring: order preserved after length sorting, padding invariance, streaming files with resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rewardmodel.ml.callbacks import ScoringCancelled
from rewardmodel.ml.infer import Scorer, length_sorted_batches, sigmoid


@pytest.fixture(scope="module")
def bert_scorer(tiny_bert: Path) -> Scorer:
    return Scorer.from_pretrained(tiny_bert, max_length=64, batch_size=8, device="cpu")


@pytest.fixture(scope="module")
def qwen_scorer(tiny_qwen: Path) -> Scorer:
    return Scorer.from_pretrained(tiny_qwen, max_length=64, batch_size=8, device="cpu")


def test_length_sorted_batches_respect_token_budget() -> None:
    lengths = np.array([5, 100, 20, 100, 7, 60])
    batches = length_sorted_batches(lengths, batch_size=4, max_batch_tokens=200)
    assert sorted(int(i) for b in batches for i in b) == list(range(6))
    assert [list(b) for b in batches][0] == [1, 3]  # 2 x 100 tokens fills the budget
    assert all(len(b) * lengths[b].max() <= 200 for b in batches)


@pytest.mark.parametrize("scorer_name", ["bert_scorer", "qwen_scorer"])
def test_batched_scores_equal_one_at_a_time_in_input_order(
    scorer_name: str, records: list[dict], request: pytest.FixtureRequest
) -> None:
    scorer: Scorer = request.getfixturevalue(scorer_name)
    recs = records[:20]
    batched = scorer.score_pairs(recs)
    single = [scorer.score_pairs([r]) for r in recs]
    np.testing.assert_allclose(batched["r_chosen"], [s["r_chosen"][0] for s in single], atol=1e-5)
    np.testing.assert_allclose(batched["r_rejected"], [s["r_rejected"][0] for s in single], atol=1e-5)
    np.testing.assert_allclose(batched["p"], sigmoid(batched["r_chosen"] - batched["r_rejected"]))
    assert len(set(np.round(batched["r_chosen"], 5))) > 3  # distinct rewards: the order check is meaningful


def test_score_responses_matches_pairs(qwen_scorer: Scorer, records: list[dict]) -> None:
    r = records[0]
    both = qwen_scorer.score([r["prompt"], r["prompt"]], [r["chosen"], r["rejected"]])
    pair = qwen_scorer.score_pairs([r])
    np.testing.assert_allclose(both, [pair["r_chosen"][0], pair["r_rejected"][0]], atol=1e-6)


def test_score_file_streams_in_chunks_and_resumes(bert_scorer: Scorer, records: list[dict], tmp_path: Path) -> None:
    src, dst = tmp_path / "pairs.jsonl", tmp_path / "scores.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in records[:25]))
    seen: list[int] = []
    with pytest.raises(ScoringCancelled):
        bert_scorer.score_file(src, dst, chunk_size=10, progress=lambda n: seen.append(n) or (n < 20))
    assert seen == [10, 20] and len(dst.read_text().splitlines()) == 20
    with dst.open("a") as fh:
        fh.write('{"id": "torn')  # a half-written line from a killed worker
    summary = bert_scorer.score_file(src, dst, chunk_size=10)
    assert summary["n"] == 25 and summary["n_scored"] == 5
    rows = [json.loads(line) for line in dst.read_text().splitlines()]
    assert [row["id"] for row in rows] == [r["id"] for r in records[:25]]
    direct = bert_scorer.score_pairs(records[:25])
    np.testing.assert_allclose([row["r_chosen"] for row in rows], direct["r_chosen"], atol=1e-5)
    assert {"subset", "r_rejected", "p"} <= set(rows[0])


def test_empty_input_scores_nothing(bert_scorer: Scorer) -> None:
    out = bert_scorer.score_pairs([])
    assert out["r_chosen"].shape == (0,)


def test_a_second_scorer_with_the_same_tokenisation_reuses_the_token_ids(
    tiny_bert: Path, bert_scorer: Scorer, records: list[dict]
) -> None:
    """Stage 2 scores a chunk with gold then best: the second model must not tokenise the same texts again."""
    from unittest import mock

    from rewardmodel.ml import infer

    other = Scorer.from_pretrained(tiny_bert, max_length=64, batch_size=8, device="cpu")
    assert other.encoding_key == bert_scorer.encoding_key and other.encoder is not bert_scorer.encoder
    recs = records[:12]
    infer.ENCODINGS = infer._EncodingMemo()
    first = bert_scorer.score_pairs(recs)
    with mock.patch.object(other.encoder, "encode", side_effect=AssertionError("tokenised twice")):
        again = other.score_pairs([dict(r) for r in recs])  # equal texts, other dict objects
    np.testing.assert_allclose(again["r_chosen"], first["r_chosen"], atol=1e-6)

    shorter = Scorer.from_pretrained(tiny_bert, max_length=16, batch_size=8, device="cpu")
    assert shorter.encoding_key != bert_scorer.encoding_key  # other truncation: other ids
    with mock.patch.object(shorter.encoder, "encode", wraps=shorter.encoder.encode) as encode:
        shorter.score_pairs(recs)
    assert encode.call_count == 1
    changed = [{**recs[0], "chosen": recs[0]["chosen"] + " more"}, *recs[1:]]
    with mock.patch.object(bert_scorer.encoder, "encode", wraps=bert_scorer.encoder.encode) as encode:
        bert_scorer.score_pairs(changed)
    assert encode.call_count == 1  # one response differs: tokenised afresh


def test_set_torch_threads_sets_and_reports_the_count() -> None:
    import torch

    from rewardmodel.ml.infer import set_torch_threads

    before = torch.get_num_threads()
    try:
        assert set_torch_threads(1) == 1 == torch.get_num_threads()
        assert set_torch_threads(0) == 1  # 0 leaves the count alone
    finally:
        torch.set_num_threads(before)
