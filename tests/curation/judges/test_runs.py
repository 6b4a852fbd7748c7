"""Judge runs: shards through the shared lifecycle, resume after a dead server, D_silver verdicts, quality."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler
from typing import Any
from unittest import mock

import pytest

from curation.judges import client, services
from curation.judges.models import JudgeCall, JudgeOutcome, JudgeRun, JudgeShard, JudgeVerdict
from curation.judges.selectors import judge_quality, judge_run_progress
from curation.judges.voting import wilson_interval
from curation.models import VerifiedPair
from tests.conftest import PASSWORD
from tests.curation.judges.conftest import content_judge, first_judge, make_pair, verify

FAST = client.RetryPolicy(retries=1, base_s=0.0, cap_s=0.0)


def test_a_run_is_cut_into_shards_dispatched_on_commit(
    project: Any, stub: Any, make_judge: Any, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.JUDGE_SHARD_SIZE = 2
    judge = make_judge(stub(content_judge).url)
    ids = [make_pair(project, n).pk for n in range(5)]
    with (
        mock.patch("curation.judges.tasks.judge_shard_run_task.delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        run = services.judge_run_create(project=project, pair_ids=ids + ids[:1], purpose="silver", judges=[judge])
    assert run.n_pairs == 5 and run.write_verdicts and not run.force_both_orders
    assert [s.pair_ids for s in run.shards.order_by("index")] == [ids[:2], ids[2:4], ids[4:]]
    assert sorted(c.kwargs["shard_id"] for c in delay.call_args_list) == sorted(run.shards.values_list("pk", flat=True))


def test_bad_run_requests_are_refused_naming_the_problem(project: Any, make_judge: Any) -> None:
    from django.core.exceptions import ValidationError

    from annotation.services import project_create

    judge = make_judge("http://127.0.0.1:9")
    other = project_create(name="Other", created_by=None)
    stray = make_pair(other, 1)
    with pytest.raises(ValidationError, match=f"pairs not in project Test project: {stray.pk}"):
        services.judge_run_create(project=project, pair_ids=[stray.pk], purpose="ask", judges=[judge])
    with pytest.raises(ValidationError, match="unknown purpose 'x'"):
        services.judge_run_create(project=project, pair_ids=[stray.pk], purpose="x", judges=[judge])
    with pytest.raises(ValidationError, match="no pairs to judge"):
        services.judge_run_create(project=project, pair_ids=[], purpose="ask", judges=[judge])
    assert not JudgeRun.objects.exists()


def test_silver_run_writes_judge_verdicts_never_gold(project: Any, stub: Any, make_judge: Any) -> None:
    judge = make_judge(stub(content_judge).url)
    pairs = [make_pair(project, n, right="B" if n % 2 else "A") for n in range(4)]
    run = services.judge_run_create(project=project, pair_ids=[p.pk for p in pairs], purpose="silver", judges=[judge])
    (shard,) = run.shards.all()
    done = services.judge_shard_run(shard_id=shard.pk, policy=FAST)
    assert done is not None and done.status == JudgeShard.Status.DONE and done.n_done == 4
    assert dict(JudgeVerdict.objects.values_list("pair_id", "side")) == {p.pk: p.source_label for p in pairs}
    assert not VerifiedPair.objects.exists()
    progress = judge_run_progress(run)
    assert (progress.status, progress.percent, progress.counts) == ("done", 100, {"A": 2, "B": 2})
    assert services.judge_shard_run(shard_id=shard.pk) is None  # claimed once


def test_a_shard_resumes_after_its_server_died(project: Any, stub: Any, make_judge: Any) -> None:
    state = {"down": False}

    def dying(request: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        if state["down"]:
            request.close_connection = True  # the server is gone: the socket closes without an answer
            return
        content_judge(request, body)

    server = stub(dying)
    judge = make_judge(server.url)
    ids = [make_pair(project, n).pk for n in range(6)]
    run = services.judge_run_create(project=project, pair_ids=ids, purpose="ask", judges=[judge])
    (shard,) = run.shards.all()

    def die() -> None:
        state["down"] = True

    stopped = services.judge_shard_run(shard_id=shard.pk, chunk=2, policy=FAST, on_chunk=die)
    assert stopped is not None and stopped.status == JudgeShard.Status.FAILED
    assert "every call failed" in stopped.error and "resume" in stopped.error
    assert JudgeOutcome.objects.filter(run=run).count() == 2 == stopped.n_done
    answered_before = JudgeCall.objects.count()
    state["down"] = False
    assert services.judge_run_resume(run=run) == 1
    resumed = services.judge_shard_run(shard_id=shard.pk, chunk=2, policy=FAST)
    assert resumed is not None and resumed.status == JudgeShard.Status.DONE and resumed.n_done == 6
    assert JudgeCall.objects.count() == answered_before + 4  # the first two pairs were not asked again
    assert judge_run_progress(run).status == "done"


def test_quality_on_the_heldout_slice_with_position_bias(
    project: Any, stub: Any, make_judge: Any, client: Any, users: dict[str, Any]
) -> None:
    make_judge(stub(content_judge).url, name="content")
    make_judge(stub(first_judge).url, name="first")
    pairs = [make_pair(project, n, right="A" if n % 3 else "B") for n in range(24)]
    for p in pairs:
        verify(p, p.source_label)
    run = services.judge_eval_create(project=project, user=None)
    assert run.force_both_orders and not run.write_verdicts
    for shard in run.shards.all():
        services.judge_shard_run(shard_id=shard.pk, policy=FAST)
    quality = {q.judge.name: q for q in judge_quality(project)}
    n = run.n_pairs
    assert n and quality["content"].agreement.n == n
    assert quality["content"].agreement.accuracy == 1.0 and quality["content"].bias.follows_position == 0.0
    assert quality["first"].agreement.n_decided == 0 and quality["first"].agreement.coverage == 0.0
    assert quality["first"].bias.follows_position == 1.0 and quality["first"].bias.first_rate == 1.0
    assert not JudgeVerdict.objects.exists()
    # With n pairs, a perfect score is not proof of perfection: the page shows the 95% Wilson interval.
    low, high = quality["content"].agreement.accuracy_ci
    assert high == 1.0 and low == pytest.approx(wilson_interval(n, n)[0]) and low < 1.0
    assert quality["first"].bias.follows_position_ci == wilson_interval(n, n)
    assert client.login(username=users["lena"].username, password=PASSWORD)
    page = client.get(f"/judges/projects/{project.pk}/").content.decode()
    assert f"[{low:.2f}, 1.00]" in page
    # A later attribute run about a held-out pair says nothing about sides: the agreement stays as it was.
    content = quality["content"].judge
    attributes_run = JudgeRun.objects.create(project=project, purpose="attributes", n_pairs=1)
    judged = JudgeOutcome.objects.filter(run=run).first()
    assert judged is not None
    JudgeOutcome.objects.create(
        run=attributes_run, pair_id=judged.pair_id, result="failed", per_judge={str(content.pk): {"result": "failed"}}
    )
    again = {q.judge.name: q for q in judge_quality(project)}["content"].agreement
    assert (again.n_decided, again.accuracy) == (n, 1.0)


def test_judge_verdicts_build_silver_records(project: Any, stub: Any, make_judge: Any) -> None:
    from curation.verdicts import judge_verdicts, pair_record

    judge = make_judge(stub(content_judge).url)
    pair = make_pair(project, 1, right="B")
    run = services.judge_run_create(project=project, pair_ids=[pair.pk], purpose="silver", judges=[judge])
    services.judge_shard_run(shard_id=run.shards.get().pk, policy=FAST)
    verdict = judge_verdicts([pair.pk])[pair.pk]
    assert (verdict.side, verdict.via, verdict.pool, verdict.verified) == ("B", "judge", "silver", False)
    record = pair_record(pair, verdict, fmt="standard")
    assert record["chosen"] == pair.response_b and record["via"] == "judge" and record["pool"] == "silver"


def test_a_real_celery_worker_works_the_shards_of_a_run(
    celery_worker: Any, project: Any, stub: Any, make_judge: Any, settings: Any
) -> None:
    from tests.conftest import wait_for

    settings.JUDGE_SHARD_SIZE = 2
    judge = make_judge(stub(content_judge).url)
    pairs = [make_pair(project, n, right="A" if n % 2 else "B") for n in range(5)]
    run = services.judge_run_create(project=project, pair_ids=[p.pk for p in pairs], purpose="silver", judges=[judge])
    assert run.shards.count() == 3  # dispatched on commit to the worker's queue, not called here
    wait_for(lambda: judge_run_progress(run).finished, timeout=120)
    assert judge_run_progress(run).status == "done"
    assert set(run.shards.values_list("status", flat=True)) == {JudgeShard.Status.DONE}
    assert dict(JudgeVerdict.objects.values_list("pair_id", "side")) == {p.pk: p.source_label for p in pairs}
