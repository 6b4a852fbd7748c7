from __future__ import annotations

import random
import threading
from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Count
from django.utils import timezone

from annotation.models import Annotation, Assignment, Pair
from annotation.services import (
    AnnotationInput,
    ServiceError,
    annotation_submit,
    assignment_claim_next,
    assignment_expire_stale,
    assignment_release,
    pair_set_priorities,
    project_update,
    user_create,
)
from tests.factories import PairFactory


def label(preference: str = "A_CLEARLY", **changes: Any) -> AnnotationInput:
    data = {
        "preference": preference,
        "task_category": "advice",
        "objectivity": "opinion",
        "controversiality": "low",
        "desired_attributes": ["helpfulness"],
        "guideline": "",
        "rationale": "A answers the question.",
        "time_spent_ms": 1500,
    }
    data.update(changes)
    return AnnotationInput(**data)


def claim_and_submit(project: Any, user: Any, preference: str = "A_CLEARLY") -> Annotation:
    assignment = assignment_claim_next(project=project, annotator=user)
    assert assignment is not None
    return annotation_submit(assignment_id=assignment.pk, annotator=user, data=label(preference))


def test_claim_returns_the_open_claim_until_submitted(loaded_project: Any, users: dict[str, Any]) -> None:
    first = assignment_claim_next(project=loaded_project, annotator=users["alice"])
    again = assignment_claim_next(project=loaded_project, annotator=users["alice"])
    assert first is not None and again is not None and first.pk == again.pk
    annotation_submit(assignment_id=first.pk, annotator=users["alice"], data=label())
    after = assignment_claim_next(project=loaded_project, annotator=users["alice"])
    assert after is not None and after.pair_id != first.pair_id


def test_each_pair_gets_exactly_n_distinct_annotators(project: Any, users: dict[str, Any]) -> None:
    pair = PairFactory(project=project)
    for name in ("alice", "bob", "carol"):
        annotation = claim_and_submit(project, users[name])
        assert annotation.pair_id == pair.pk
    pair.refresh_from_db()
    assert (pair.n_claimed, pair.n_submitted, pair.status) == (3, 3, Pair.Status.COMPLETE)
    assert assignment_claim_next(project=project, annotator=users["dave"]) is None  # a fourth annotator gets nothing


def test_annotator_never_gets_a_pair_twice(project: Any, users: dict[str, Any]) -> None:
    pairs = PairFactory.create_batch(3, project=project)
    seen = [claim_and_submit(project, users["alice"]).pair_id for _ in pairs]
    assert sorted(seen) == sorted(p.pk for p in pairs)
    assert assignment_claim_next(project=project, annotator=users["alice"]) is None


def test_queue_follows_priority(project: Any, users: dict[str, Any]) -> None:
    low, high, mid = PairFactory.create_batch(3, project=project)
    pair_set_priorities(priorities={high.pk: 0.9, mid.pk: 0.5})
    order = [claim_and_submit(project, users["alice"]).pair_id for _ in range(3)]
    assert order == [high.pk, mid.pk, low.pk]


def test_order_shown_is_random_per_annotator_and_stored(project: Any, users: dict[str, Any]) -> None:
    pairs = PairFactory.create_batch(40, project=project)
    orders = []
    for _ in pairs:
        annotation = claim_and_submit(project, users["alice"])
        assert annotation.order_shown == annotation.assignment.order_shown
        orders.append(annotation.order_shown)
    assert {"AB", "BA"} == set(orders)


def test_invalid_label_stores_nothing(loaded_project: Any, users: dict[str, Any]) -> None:
    assignment = assignment_claim_next(project=loaded_project, annotator=users["alice"])
    with pytest.raises(ValidationError) as info:
        annotation_submit(
            assignment_id=assignment.pk,
            annotator=users["alice"],
            data=label(task_category="astrology", rationale=" ", desired_attributes=["vibes"]),
        )
    assert set(info.value.message_dict) == {"task_category", "rationale", "desired_attributes"}
    assert Annotation.objects.count() == 0
    assignment.refresh_from_db()
    assert assignment.status == Assignment.Status.CLAIMED


def test_cannot_submit_for_someone_elses_assignment(loaded_project: Any, users: dict[str, Any]) -> None:
    assignment = assignment_claim_next(project=loaded_project, annotator=users["alice"])
    with pytest.raises(ServiceError, match="not assigned to you"):
        annotation_submit(assignment_id=assignment.pk, annotator=users["bob"], data=label())
    assert Annotation.objects.count() == 0


def test_cannot_submit_twice(loaded_project: Any, users: dict[str, Any]) -> None:
    assignment = assignment_claim_next(project=loaded_project, annotator=users["alice"])
    annotation_submit(assignment_id=assignment.pk, annotator=users["alice"], data=label())
    with pytest.raises(ServiceError, match="already labelled"):
        annotation_submit(assignment_id=assignment.pk, annotator=users["alice"], data=label("B_CLEARLY"))
    assert Annotation.objects.get().preference == "A_CLEARLY"


def test_expired_claim_returns_to_pool(project: Any, users: dict[str, Any]) -> None:
    project_update(project=project, annotators_per_pair=1)
    pair = PairFactory(project=project)
    stale = assignment_claim_next(project=project, annotator=users["alice"])
    assert assignment_claim_next(project=project, annotator=users["bob"]) is None  # the only slot is taken
    assert assignment_expire_stale(now=timezone.now() + timedelta(minutes=project.claim_timeout_minutes + 1)) == 1
    stale.refresh_from_db()
    pair.refresh_from_db()
    assert stale.status == Assignment.Status.EXPIRED and pair.n_claimed == 0 and pair.status == Pair.Status.OPEN
    taken = assignment_claim_next(project=project, annotator=users["bob"])
    assert taken is not None and taken.pair_id == pair.pk
    with pytest.raises(ServiceError, match="expired and it went to another annotator"):
        annotation_submit(assignment_id=stale.pk, annotator=users["alice"], data=label())


def test_expired_claim_with_free_slot_still_accepts_the_label(project: Any, users: dict[str, Any]) -> None:
    pair = PairFactory(project=project)
    stale = assignment_claim_next(project=project, annotator=users["alice"])
    Assignment.objects.filter(pk=stale.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assignment_expire_stale()
    annotation = annotation_submit(assignment_id=stale.pk, annotator=users["alice"], data=label())
    pair.refresh_from_db()
    assert annotation.pair_id == pair.pk and (pair.n_claimed, pair.n_submitted) == (1, 1)


def test_release_skips_the_pair(project: Any, users: dict[str, Any]) -> None:
    first, second = PairFactory.create_batch(2, project=project)
    claim = assignment_claim_next(project=project, annotator=users["alice"])
    assert claim.pair_id == first.pk
    assignment_release(assignment_id=claim.pk, annotator=users["alice"])
    first.refresh_from_db()
    assert first.n_claimed == 0
    # The released pair is offered again (it is still the highest priority) but to others too.
    assert assignment_claim_next(project=project, annotator=users["bob"]).pair_id == first.pk


def test_lowering_n_below_existing_claims_is_refused(project: Any, users: dict[str, Any]) -> None:
    PairFactory(project=project)
    for name in ("alice", "bob"):
        claim_and_submit(project, users[name])
    with pytest.raises(ValidationError, match="more than 1"):
        project_update(project=project, annotators_per_pair=1)
    project_update(project=project, annotators_per_pair=2)
    assert Pair.objects.get().status == Pair.Status.COMPLETE


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_and_submits_keep_every_invariant(require_postgres: None) -> None:
    """Twelve annotators in threads race over 30 pairs (N=3); claims expire under them too."""
    from annotation.services import project_create

    annotators = [user_create(username=f"racer{i}", password="pw-racer-1", roles=["annotator"]) for i in range(12)]
    project = project_create(name="race", annotators_per_pair=3)
    PairFactory.create_batch(30, project=project)
    stored: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(annotators))

    def work(user: Any, seed: int) -> None:
        rng = random.Random(seed)
        try:
            barrier.wait()
            while True:
                assignment = assignment_claim_next(project=project, annotator=user)
                if assignment is None:
                    return
                if rng.random() < 0.1:
                    # Some claims are abandoned and expire, as a closed tab would.
                    Assignment.objects.filter(pk=assignment.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
                    assignment_expire_stale()
                    continue
                try:
                    annotation = annotation_submit(
                        assignment_id=assignment.pk, annotator=user, data=label(rng.choice(["A_CLEARLY", "B_SLIGHTLY"]))
                    )
                except ServiceError:
                    continue
                with lock:
                    stored.append(annotation.pk)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(user, i)) for i, user in enumerate(annotators)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert sorted(stored) == sorted(Annotation.objects.values_list("pk", flat=True))  # every success is stored
    per_pair = Annotation.objects.values("pair").annotate(n=Count("id"))
    assert per_pair.count() == 30 and {row["n"] for row in per_pair} == {3}
    assert not Annotation.objects.values("pair", "annotator").annotate(n=Count("id")).filter(n__gt=1).exists()
    for pair in Pair.objects.all():
        assert (pair.n_claimed, pair.n_submitted, pair.status) == (3, 3, Pair.Status.COMPLETE)


def test_retest_is_offered_to_one_annotator_and_does_not_count(project: Any, users: dict[str, Any]) -> None:
    from annotation.services import assignment_offer_retest

    project.members.add(users["dave"])
    pair = PairFactory(project=project)
    for name in ("alice", "bob", "carol"):
        claim_and_submit(project, users[name])
    with pytest.raises(ServiceError, match="already seen"):
        assignment_offer_retest(pair=pair, annotator=users["alice"])
    offer = assignment_offer_retest(pair=pair, annotator=users["dave"])
    assert offer.status == Assignment.Status.OFFERED
    assert assignment_claim_next(project=project, annotator=users["lena"]) is None  # not in anyone else's queue
    claim = assignment_claim_next(project=project, annotator=users["dave"])
    assert claim.pk == offer.pk and claim.status == Assignment.Status.CLAIMED and claim.expires_at is not None
    annotation = annotation_submit(assignment_id=claim.pk, annotator=users["dave"], data=label("B_CLEARLY"))
    pair.refresh_from_db()
    assert annotation.is_retest and (pair.n_claimed, pair.n_submitted, pair.status) == (3, 3, Pair.Status.COMPLETE)


def test_expired_retest_goes_back_to_its_annotator(project: Any, users: dict[str, Any]) -> None:
    from annotation.services import assignment_offer_retest

    project.members.add(users["dave"])
    pair = PairFactory(project=project)
    offer = assignment_offer_retest(pair=pair, annotator=users["dave"])
    assignment_claim_next(project=project, annotator=users["dave"])
    assignment_expire_stale(now=timezone.now() + timedelta(days=1))
    offer.refresh_from_db()
    assert offer.status == Assignment.Status.OFFERED
    pair.refresh_from_db()
    assert pair.n_claimed == 0


def test_completion_is_announced_after_commit(
    project: Any, users: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    from annotation.signals import annotation_submitted, pair_completed

    seen: list[tuple[str, int]] = []
    submitted = lambda **kw: seen.append(("submitted", kw["pair_id"]))  # noqa: E731
    completed = lambda **kw: seen.append(("completed", kw["pair_id"]))  # noqa: E731
    annotation_submitted.connect(submitted, weak=False)
    pair_completed.connect(completed, weak=False)
    try:
        pair = PairFactory(project=project)
        for name in ("alice", "bob"):
            with django_capture_on_commit_callbacks(execute=True):
                claim_and_submit(project, users[name])
        assert seen == [("submitted", pair.pk), ("submitted", pair.pk)]
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            claim_and_submit(project, users["carol"])
        assert len(seen) == 2  # nothing is announced before the transaction commits
        for callback in callbacks:
            callback()
        assert seen[2:] == [("submitted", pair.pk), ("completed", pair.pk)]
    finally:
        annotation_submitted.disconnect(submitted)
        pair_completed.disconnect(completed)
