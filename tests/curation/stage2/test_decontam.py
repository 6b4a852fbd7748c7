"""13-gram decontamination (pure): tokenising, shingles, matches, the report, and bad benchmark files."""

from __future__ import annotations

import json

import pytest

from curation.stage2.decontam import (
    BenchmarkFormatError,
    BenchmarkIndex,
    BenchmarkPrompt,
    parse_benchmark,
    prompt_text,
    shingles,
    words,
)

SENTENCE = "the quick brown fox jumps over the lazy dog while seven wizards quietly judge boxing matches"


def index_of(*prompts: str, n: int = 13) -> BenchmarkIndex:
    lines = [json.dumps({"prompt": p, "id": f"b{i}", "subset": "chat"}) for i, p in enumerate(prompts)]
    return BenchmarkIndex(parse_benchmark(lines), n=n)


def test_words_ignore_case_punctuation_and_underscores() -> None:
    assert words("Hello, WORLD!  it's snake_case 42") == ["hello", "world", "it", "s", "snake", "case", "42"]


def test_words_keep_non_latin_letters() -> None:
    assert words("Ça va? Привет мир") == ["ça", "va", "привет", "мир"]


def test_no_shingle_when_fewer_tokens_than_n() -> None:
    assert list(shingles(["a"] * 12, 13)) == []
    assert len(list(shingles(["a", "b"] * 7, 13))) == 2  # 14 tokens: two windows


def test_shared_13_gram_matches_and_reports_it() -> None:
    index = index_of("Please answer: " + SENTENCE + ".")
    found = index.match("Some preamble. " + SENTENCE.upper() + "!!! and more")
    assert found is not None
    assert found.benchmark_id == "b0" and found.benchmark_subset == "chat"
    assert found.ngram == " ".join(SENTENCE.split()[:13])


def test_12_shared_words_are_not_contamination() -> None:
    twelve = " ".join(SENTENCE.split()[:12])
    index = index_of(twelve + " alpha beta gamma")
    assert not index.is_contaminated("x " + twelve + " delta epsilon")


def test_overlap_across_a_punctuation_boundary_still_counts() -> None:
    tokens = SENTENCE.split()[:13]
    spaced = ", ".join(tokens[:6]) + ". " + " ".join(tokens[6:])
    assert index_of(" ".join(tokens)).is_contaminated(spaced)


def test_prompt_shorter_than_n_never_matches() -> None:
    index = index_of("short benchmark prompt")
    assert len(index) == 0
    assert not index.is_contaminated("short benchmark prompt")


def test_first_owner_is_named_when_two_benchmark_prompts_share_the_gram() -> None:
    index = index_of(SENTENCE, "prefix " + SENTENCE)
    found = index.match(SENTENCE)
    assert found is not None and found.benchmark_id == "b0"


def test_hash_collision_is_rechecked_against_the_words() -> None:
    index = index_of(SENTENCE)
    other = "completely different words that share no window with the benchmark at all today"
    # Force a collision: make the index believe the other text's first window is the benchmark's.
    fake_hash = hash(tuple(words(other)[:13]))
    index._owner[fake_hash] = 0
    assert index.match(other) is None


def test_message_list_prompt_is_read_whole() -> None:
    text = prompt_text([{"role": "user", "content": "first"}, {"role": "assistant", "content": "second"}])
    assert text == "first\nsecond"


def test_json_array_benchmark_and_ids_default_to_position() -> None:
    prompts = parse_benchmark([json.dumps([{"prompt": "a b c"}, {"prompt": [{"role": "user", "content": "d"}]}])])
    assert [p.id for p in prompts] == ["1", "2"]
    assert prompts[1].tokens == ("d",)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['{"prompt": "ok"}', "{not json"], "line 2: invalid JSON"),
        (['{"chosen": "x"}'], "line 1: missing field 'prompt'"),
        (['{"prompt": 5}'], "line 1: field 'prompt'"),
        (['{"prompt": "a"}', '"just a string"'], "line 2: expected a JSON object"),
        (["", "  "], "holds no prompt"),
        (['[{"prompt": "x"}, 3]'], "item 2: expected a JSON object"),
        (["[{"], "invalid JSON array"),
    ],
)
def test_bad_benchmark_file_names_line_and_field(lines: list[str], message: str) -> None:
    with pytest.raises(BenchmarkFormatError, match=message):
        parse_benchmark(lines)


def test_blank_lines_are_skipped_and_line_numbers_stay_true() -> None:
    with pytest.raises(BenchmarkFormatError, match="line 3"):
        parse_benchmark(['{"prompt": "a"}', "", '{"id": 1}'])


def test_n_must_be_positive() -> None:
    with pytest.raises(ValueError, match="n must be"):
        BenchmarkIndex([BenchmarkPrompt(0, "x", "", ("a",))], n=0)
