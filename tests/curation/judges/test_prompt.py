"""The judge prompt builder and answer parser (pure)."""

from __future__ import annotations

import json

import pytest

from curation.judges import prompt

PAIR = prompt.PairText(
    conversation=[{"role": "user", "content": "Name the capital of France."}],
    response_a="Paris is the capital.",
    response_b="Lyon is the capital.",
)

GUIDELINE = """# Rules
Prefer correct answers.

## Using the tools
Run the code runner on every code block.
Search the corpus.

## Safety
Refuse harmful requests.
Use the fact-check search when unsure.
"""


def test_strip_tool_parts_drops_tool_sections_and_lines_only() -> None:
    text = prompt.strip_tool_parts(GUIDELINE)
    assert "Prefer correct answers." in text and "Refuse harmful requests." in text
    assert "## Safety" in text
    assert "code runner" not in text and "Search the corpus" not in text and "fact-check" not in text


@pytest.mark.parametrize("order,first,second", [("AB", "Paris", "Lyon"), ("BA", "Lyon", "Paris")])
def test_target_is_shown_in_the_given_order(order: str, first: str, second: str) -> None:
    messages = prompt.build_messages(guideline=GUIDELINE, examples=[], target=PAIR, order=order)
    user = messages[-1]["content"]
    assert user.index("### Candidate 1") < user.index(first) < user.index("### Candidate 2") < user.index(second)
    assert "Prefer correct answers." in user and "code runner" not in user


def test_examples_carry_attributes_and_label_in_their_own_order() -> None:
    example = prompt.Example(
        pair=prompt.PairText([{"role": "user", "content": "2+2?"}], "4", "5"),
        side="A",
        strength="clearly",
        attributes={"task_category": "math", "desired_attributes": ["accuracy", "brevity"]},
        order="BA",
    )
    messages = prompt.build_messages(guideline="", examples=[example], target=PAIR, order="AB")
    user = messages[-1]["content"]
    assert "- task category: math" in user and "- desired attributes: accuracy, brevity" in user
    # A is shown second in the example, so its verified answer is candidate 2.
    assert json.dumps({"choice": "2", "strength": "clearly"}) in user
    assert user.index("## Example 1") < user.index("## The pair to judge")


def test_too_many_examples_and_bad_order_are_refused() -> None:
    example = prompt.Example(pair=PAIR, side="A", strength="slightly")
    with pytest.raises(ValueError, match="at most 8 examples"):
        prompt.build_messages(guideline="", examples=[example] * 9, target=PAIR, order="AB")
    with pytest.raises(ValueError, match="order must be"):
        prompt.build_messages(guideline="", examples=[], target=PAIR, order="AA")


def test_prompt_hash_changes_with_order_and_is_stable() -> None:
    ab = prompt.build_messages(guideline="g", examples=[], target=PAIR, order="AB")
    ba = prompt.build_messages(guideline="g", examples=[], target=PAIR, order="BA")
    again = prompt.build_messages(guideline="g", examples=[], target=PAIR, order="AB")
    assert prompt.prompt_hash(ab) == prompt.prompt_hash(again) != prompt.prompt_hash(ba)


@pytest.mark.parametrize(
    "choice,order,side", [("1", "AB", "A"), ("2", "AB", "B"), ("1", "BA", "B"), ("2", "BA", "A"), ("tie", "BA", "tie")]
)
def test_choice_maps_back_to_the_canonical_side(choice: str, order: str, side: str) -> None:
    assert prompt.choice_to_side(choice, order) == side
    if side != "tie":
        assert prompt.side_to_choice(side, order) == choice


@pytest.mark.parametrize(
    "content,choice,strength",
    [
        ('{"choice": "2", "strength": "clearly"}', "2", "clearly"),
        ('{"choice": 1, "strength": "slight"}', "1", "slightly"),
        ('Sure!\n```json\n{"choice": "Candidate 1", "strength": "slightly"}\n```', "1", "slightly"),
        ('{"choice": "tie", "strength": "slightly"}', "tie", "slightly"),
        ('{"choice": "2", "strength": "cle', "2", ""),  # cut off by max_tokens
        ("Candidate 2 is clearly better because it is right.", "2", "clearly"),
        ('{"choice": "1"}', "1", ""),
    ],
)
def test_answers_are_read_tolerantly(content: str, choice: str, strength: str) -> None:
    judgement = prompt.parse_judgement(content)
    assert judgement.ok and (judgement.choice, judgement.strength) == (choice, strength)


@pytest.mark.parametrize(
    "content,error",
    [
        ("", "empty answer"),
        ("I like both of them a lot.", "no choice found"),
        ("Candidate 1 is longer but Candidate 2 is correct.", "names both candidates"),
        ('{"choice": "3", "strength": "clearly"}', "is not 1, 2 or tie"),
    ],
)
def test_unreadable_answers_say_why(content: str, error: str) -> None:
    judgement = prompt.parse_judgement(content)
    assert not judgement.ok and error in judgement.error and judgement.choice == ""
