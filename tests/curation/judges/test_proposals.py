"""The judges propose attributes for unlabelled pairs: prompt, tolerant reading, votes, runs and pages."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any
from unittest import mock

import pytest
from django.test import Client

from annotation.proposals import proposal_acceptance
from curation.judges import attributes, client, prompt
from curation.judges.models import JudgeCall, JudgeOutcome, JudgeRun, JudgeShard
from curation.judges.proposals import attribute_proposals_create, pairs_propose_attributes
from curation.judges.services import judge_shard_run
from tests.conftest import PASSWORD
from tests.curation.judges.conftest import labelled_pair, make_pair, send_json, verify
from tests.factories import PairFactory

FAST = client.RetryPolicy(retries=0)
TAXONOMY = ["advice", "coding", "math"]
DESIRED = ["helpfulness", "honesty", "harmlessness"]


def answer(values: dict[str, Any]) -> Any:
    def handler(request: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        send_json(request, {"choices": [{"message": {"content": "Here:\n```json\n" + json.dumps(values) + "\n```"}}]})

    return handler


def test_the_prompt_lists_the_choices_and_drops_tool_parts() -> None:
    pair = prompt.PairText([{"role": "user", "content": "How do I sort?"}], "Use sorted().", "No idea.")
    messages = attributes.build_attribute_messages(
        guideline="Be fair.\n\n## Using the code runner\nRun it.", taxonomy=TAXONOMY, desired=DESIRED, pair=pair
    )
    text = messages[-1]["content"]
    assert "one of advice, coding, math" in text and "from helpfulness, honesty, harmlessness" in text
    assert "Be fair." in text and "code runner" not in text and "Use sorted()." in text
    with pytest.raises(ValueError, match="no task categories"):
        attributes.build_attribute_messages(guideline="", taxonomy=[], desired=DESIRED, pair=pair)


def test_answers_are_read_tolerantly_and_unreadable_fields_named() -> None:
    read = attributes.parse_attributes(
        '{"task_category": "Coding", "objectivity": "open-ended", "controversiality": "LOW", '
        '"desired_attributes": ["Honesty", "vibes"], "guideline": " show\\n the code "}',
        TAXONOMY,
        DESIRED,
    )
    assert read.ok and read.values == {
        "task_category": "coding",
        "objectivity": "open_ended",
        "controversiality": "low",
        "desired_attributes": ["honesty"],
        "guideline": "show the code",
    }
    bad = attributes.parse_attributes('{"task_category": "poetry", "objectivity": "factual"}', TAXONOMY, DESIRED)
    assert not bad.ok and bad.error == "unreadable: task_category, controversiality"
    assert attributes.parse_attributes("coding, I think", TAXONOMY, DESIRED).error.startswith("no JSON object")


def test_proposals_combine_by_majority() -> None:
    one = {
        "task_category": "coding",
        "objectivity": "factual",
        "controversiality": "low",
        "desired_attributes": ["honesty"],
        "guideline": "",
    }
    two = {**one, "objectivity": "opinion", "desired_attributes": ["honesty", "helpfulness"], "guideline": "cite"}
    three = {**one, "task_category": "math", "desired_attributes": ["helpfulness"]}
    combined = attributes.combine_proposals([one, two, three])
    assert combined == {
        "task_category": "coding",
        "objectivity": "factual",
        "controversiality": "low",
        "desired_attributes": ["honesty", "helpfulness"],
        "guideline": "cite",
    }
    assert attributes.combine_proposals([one, three])["task_category"] == "coding"  # a tie: the first judge
    assert attributes.combine_proposals([]) is None


GOOD = {
    "task_category": "advice",
    "objectivity": "factual",
    "controversiality": "medium",
    "desired_attributes": ["honesty"],
    "guideline": "be exact",
}


def test_a_run_proposes_for_unlabelled_pairs_only_and_is_cached(
    project: Any, stub: Any, make_judge: Any, settings: Any
) -> None:
    server = stub(answer(GOOD))
    judge = make_judge(server.url, response_format="json_schema")
    make_judge("http://127.0.0.1:9", mode="pointwise")  # pointwise judges do not propose
    pairs = [make_pair(project, n) for n in range(3)]
    verified = make_pair(project, 50)
    verify(verified, "A")
    with mock.patch("curation.judges.tasks.judge_shard_run_task.delay"):
        run = attribute_proposals_create(project=project)
    assert run.purpose == "attributes" and list(run.judges.all()) == [judge] and run.n_pairs == 3
    done = judge_shard_run(shard_id=run.shards.get().pk, policy=FAST)
    assert done is not None and done.status == JudgeShard.Status.DONE and done.n_done == 3
    for pair in pairs:
        pair.refresh_from_db()
        assert {k: pair.attribute_proposal[k] for k in GOOD} == GOOD
        assert pair.attribute_proposal["source"] == f"LLM judges: {judge.name}"
    verified.refresh_from_db()
    assert verified.attribute_proposal is None
    assert set(JudgeOutcome.objects.values_list("result", flat=True)) == {"proposed"}
    # The answer's schema went to the server as structured output.
    schema = server.requests[0]["body"]["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["task_category"]["enum"] == project.taxonomy
    calls = JudgeCall.objects.filter(kind="attributes")
    assert calls.count() == 3 and all(c.status == "ok" for c in calls)
    pairs_propose_attributes(pairs=pairs, judges=[judge], store=False)
    assert len(server.requests) == 3  # cached
    with pytest.raises(Exception, match="already has a proposal"):
        attribute_proposals_create(project=project)


def test_unreadable_answers_propose_nothing_and_say_why(project: Any, stub: Any, make_judge: Any) -> None:
    judge = make_judge(stub(answer({"task_category": "astrology"})).url)
    pair = make_pair(project, 1)
    result = pairs_propose_attributes(pairs=[pair], judges=[judge], policy=FAST)[pair.pk]
    assert result.values is None and "unreadable: task_category" in result.reason
    pair.refresh_from_db()
    assert pair.attribute_proposal is None
    assert JudgeCall.objects.get(kind="attributes").status == "unparsed"


def test_leads_start_proposals_and_see_acceptance(
    client: Client, users: dict[str, Any], project: Any, stub: Any, make_judge: Any
) -> None:
    make_judge(stub(answer(GOOD)).url)
    make_pair(project, 1)
    assert client.login(username=users["alice"].username, password=PASSWORD)
    assert client.post(f"/judges/projects/{project.pk}/propose/").status_code == 403
    client.logout()
    assert client.login(username=users["lena"].username, password=PASSWORD)
    with mock.patch("curation.judges.tasks.judge_shard_run_task.delay"):
        response = client.post(f"/judges/projects/{project.pk}/propose/", follow=True)
    assert "Proposing attributes for 1 unlabelled pairs." in response.content.decode()
    run = JudgeRun.objects.get(purpose="attributes")
    judge_shard_run(shard_id=run.shards.get().pk, policy=FAST)
    page = client.get(f"/curation/projects/{project.pk}/").content.decode()
    assert 'id="proposal-acceptance"' in page and "1 pairs carry a proposal, 0 of them labelled" in page
    assert all(r.n == 0 for r in proposal_acceptance(project))


# --- retrieved examples in the attribute prompt ---------------------------------------------------


def test_the_prompt_shows_examples_first_in_order_as_answers() -> None:
    pair = prompt.PairText([{"role": "user", "content": "How do I sort?"}], "Use sorted().", "No idea.")
    values = {**GOOD, "task_category": "coding", "desired_attributes": ["honesty"]}
    examples = [
        attributes.AttributeExample([{"role": "user", "content": f"question {n}"}], {**values, "guideline": f"g{n}"})
        for n in range(3)
    ]
    text = attributes.build_attribute_messages(
        guideline="", taxonomy=TAXONOMY, desired=DESIRED, pair=pair, examples=examples
    )[-1]["content"]
    positions = [text.index(f"## Example {n + 1} (attributes verified") for n in range(3)]
    assert positions == sorted(positions) and positions[-1] < text.index("## The conversation to describe")
    assert text.index("question 0") < text.index("question 1") < text.index("question 2")
    assert json.dumps({**values, "guideline": "g1"}) in text  # the answer's JSON form, the five keys in order
    plain = attributes.build_attribute_messages(guideline="", taxonomy=TAXONOMY, desired=DESIRED, pair=pair)
    assert "## Example" not in plain[-1]["content"] and "## Conversation" in plain[-1]["content"]
    with pytest.raises(ValueError, match="at most 8 examples"):
        attributes.build_attribute_messages(
            guideline="", taxonomy=TAXONOMY, desired=DESIRED, pair=pair, examples=examples * 3
        )


def test_attribute_prompts_show_the_most_similar_verified_attributes(
    project: Any, users: dict[str, Any], stub: Any, make_judge: Any, settings: Any
) -> None:
    settings.JUDGE_ATTRIBUTE_EXAMPLES = 3
    server = stub(answer(GOOD))
    judge = make_judge(server.url)
    both: list[dict[str, Any]] = [{}, {}]

    def agreed(category: str, guideline: str) -> list[dict[str, Any]]:
        return [{"task_category": category, "guideline": guideline}, {"task_category": category}]

    # Word overlap with the target decides similarity (the lexical retriever); markers name each pair.
    close = labelled_pair(project, users, "volcanoes lava eruptions magma ash mk1", agreed("factual question", "alpha"))
    middle = labelled_pair(project, users, "volcanoes lava eruptions magma mk2", agreed("advice", "beta"))
    far = labelled_pair(project, users, "volcanoes lava eruptions mk3", agreed("math", "gamma"))
    unrelated = labelled_pair(project, users, "bread flour yeast mk4", agreed("advice", "delta"))
    heldout = labelled_pair(project, users, "volcanoes lava eruptions magma ash mkh", both)
    tied = labelled_pair(
        project,
        users,
        "volcanoes lava eruptions magma ash mkt",
        [{"task_category": "math"}, {"task_category": "other"}],
    )
    labelled_pair(project, users, "volcanoes lava eruptions magma ash mkn", both)  # labels, no verdict
    no_labels = PairFactory.create(
        project=project, conversation=[{"role": "user", "content": "volcanoes lava eruptions magma ash mkv"}]
    )
    for pair in (close, middle, far, unrelated, heldout, tied, no_labels):
        verify(pair, "A")
    target = PairFactory.create(
        project=project, conversation=[{"role": "user", "content": "volcanoes lava eruptions magma ash"}]
    )
    # The held-out slice hashes pair ids (they differ per database): pin it to one pair.
    with (
        mock.patch("curation.judges.services.in_heldout", lambda pid, fraction: pid == heldout.pk),
        mock.patch("curation.judges.tasks.judge_shard_run_task.delay"),
    ):
        run = attribute_proposals_create(project=project)
        assert run.n_pairs == 1  # only the target is unlabelled and unverified
        judge_shard_run(shard_id=run.shards.get().pk, policy=FAST)
    (request,) = server.requests
    text = request["body"]["messages"][-1]["content"]
    shown_examples = text.split("## The conversation to describe")[0]
    assert shown_examples.count("## Example ") == 3
    assert shown_examples.index("mk1") < shown_examples.index("mk2") < shown_examples.index("mk3")
    assert shown_examples.index('"alpha"') < shown_examples.index('"beta"') < shown_examples.index('"gamma"')
    assert '"task_category": "factual question", "objectivity": "factual"' in shown_examples
    for marker in ("mk4", "mkh", "mkt", "mkn", "mkv"):
        assert marker not in text, marker
    call = JudgeCall.objects.get(kind="attributes")
    assert call.n_examples == 3
    target.refresh_from_db()
    assert target.attribute_proposal["task_category"] == GOOD["task_category"]

    # A judge with a smaller cap sees the most similar part; the target itself is never its own example.
    judge.max_examples = 1
    judge.save()
    with mock.patch("curation.judges.services.in_heldout", lambda pid, fraction: pid == heldout.pk):
        pairs_propose_attributes(pairs=[close], judges=[judge], store=False)
    text = server.requests[-1]["body"]["messages"][-1]["content"]
    assert text.count("## Example ") == 1 and text.count("mk1") == 1  # in the target's section only
    assert "mk2" in text.split("## The conversation to describe")[0]

    # No examples asked for: a different prompt, so a different cache key (the server is asked again).
    settings.JUDGE_ATTRIBUTE_EXAMPLES = 0
    judge.max_examples = 8
    judge.save()
    asked = len(server.requests)
    pairs_propose_attributes(pairs=[target], judges=[judge], store=False)
    assert len(server.requests) == asked + 1
    assert "## Example" not in server.requests[-1]["body"]["messages"][-1]["content"]
    assert JudgeCall.objects.filter(pair=target, kind="attributes").count() == 2


def test_the_attribute_examples_setting_is_checked_at_start(tmp_path: Any) -> None:
    from tests.test_settings import run_python

    done = run_python("import django; django.setup()", tmp_path, SYNPREF_DEV="1", JUDGE_ATTRIBUTE_EXAMPLES="9")
    assert done.returncode != 0 and "JUDGE_ATTRIBUTE_EXAMPLES must be between 0 and 8, got 9" in done.stderr
