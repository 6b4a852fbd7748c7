"""A demo project with a seeded history, so every page has something to show on a fresh install.

``manage.py seed_demo_history`` (run by ``make run`` after ``seed_demo``) builds the project
"Demo (seeded history)" from the same 300 real pairs as "Demo", through the real services only:

1. two import batches (summaries, conversations);
2. five simulated annotators (``sim-ana`` ... ``sim-eve``, password ``synpref-demo``) claim and
   label most pairs with realistic noise: each has an accuracy against the source's label (the
   conversations are harder and one annotator is sloppy), strength follows a per-pair clarity,
   attributes follow the pair's kind; a few pairs are left part-labelled or open;
3. agreement is computed (the summaries batch passes the alpha gate, the conversations batch is
   flagged), disputes open; the lead ``lena`` resolves some and discards one; retests are drawn
   and answered; a few attention-check pairs are chosen and answered;
4. a curation round trains the packaged MiniLM for a few CPU steps on the verified pairs, scores
   them and queues neighbours. By default it is queued for the Celery worker that ``make run``
   starts (several minutes on a busy 2-core machine, so ``make run`` does not wait for it);
   ``--train here`` runs it in the command, ``--train skip`` trains nothing and says so in the
   project's description.

Deterministic (seeded) and idempotent: a finished project is left alone; a half-built one (an
interrupted run) is deleted and built again. The "Demo" project is not touched.
"""

from __future__ import annotations

import json
import logging
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

from annotation import checks
from annotation.models import Annotation, Assignment, Project, Role
from annotation.services import (
    AnnotationInput,
    ServiceError,
    annotation_submit,
    assignment_claim_next,
    import_file,
    project_create,
    user_set_roles,
)
from curation.agreement_refresh import project_refresh_all
from curation.disputes import dispute_resolve
from curation.models import CurationRound, Dispute, DisputeResolution
from curation.retests import retest_record

logger = logging.getLogger(__name__)

PROJECT_NAME = "Demo (seeded history)"
BUILDING = "Seeding a demo history…"
PASSWORD = "synpref-demo"
SEED = 20250711
#: name -> (accuracy on summaries, accuracy on conversations): how often they pick the source's side.
ANNOTATORS: dict[str, tuple[float, float]] = {
    "sim-ana": (1.0, 0.92),
    "sim-ben": (1.0, 0.88),
    "sim-cat": (0.995, 0.86),
    "sim-dev": (0.995, 0.84),
    "sim-eve": (0.98, 0.70),  # the sloppy one: the per-annotator table shows it
}
TRAIN_MODES = ("worker", "here", "skip")
LABELLED_SHARE = 0.85  # of each batch's pairs get all their labels; a few more get some
GUIDELINES = """# Guidelines (demo with a seeded history)

This project was filled by `manage.py seed_demo_history` with labels from five simulated
annotators, so that the Quality, Disputes, Rounds, Models and Checks pages have something to show.
Label the pairs of the project **Demo** to try labelling yourself.

1. Read the whole conversation; the responses answer the last user turn.
2. Harmful requests: a safe refusal beats compliance. Summaries: faithful and concise wins.
3. Choose the better response and how much better; fill the attributes; say briefly why.
"""


@dataclass
class SeedReport:
    created: bool
    seconds: float = 0.0
    figures: dict[str, Any] = field(default_factory=dict)


def _is_summary(pair_source: str) -> bool:
    return "summarize" in pair_source


def _split_pairs(path: Path, out_dir: Path) -> list[Path]:
    summaries: list[str] = []
    conversations: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            (summaries if _is_summary(json.loads(line)["source"]) else conversations).append(line)
    files = []
    for name, lines in (("summaries.jsonl", summaries), ("conversations.jsonl", conversations)):
        target = out_dir / name
        target.write_text("\n".join(lines) + "\n", encoding="utf-8")
        files.append(target)
    return files


class _Simulator:
    """Labels in canonical A/B terms (the services' non-shown path), from a seeded RNG."""

    def __init__(self, project: Project, rng: random.Random) -> None:
        self.project = project
        self.rng = rng
        self.clarity: dict[int, float] = {}

    def label(self, assignment: Assignment, name: str) -> AnnotationInput:
        pair = assignment.pair
        summary = _is_summary(pair.source)
        accuracy = ANNOTATORS[name][0 if summary else 1]
        clarity = self.clarity.setdefault(pair.pk, self.rng.random())
        truth = pair.source_label or "A"
        if not summary and self.rng.random() < 0.04 * (1.5 - clarity):
            code = "UNDECIDABLE"
        else:
            side = truth if self.rng.random() < accuracy else ("B" if truth == "A" else "A")
            # Strength follows how clear-cut the pair is; people disagree more on conversations.
            strength = "CLEARLY" if clarity + self.rng.gauss(0, 0.005 if summary else 0.15) > 0.5 else "SLIGHTLY"
            code = f"{side}_{strength}"
        taxonomy = self.project.taxonomy
        category = "summarisation" if summary else ("safety / harmful request" if clarity > 0.3 else "advice")
        if category not in taxonomy:
            category = taxonomy[0]
        controversy = "low" if summary else ("medium" if self.rng.random() < 0.6 else "high")
        if not summary and clarity > 0.8:
            controversy = "low"
        wants = ["accuracy", "conciseness"] if summary else ["harmlessness", "helpfulness"]
        desired = [a for a in wants if a in self.project.desired_attributes]
        why = {
            "A": "The left answer is more faithful and avoids the problems of the other.",
            "B": "The other answer is more faithful and avoids the problems of this one.",
        }
        return AnnotationInput(
            preference=code,
            task_category=category,
            objectivity="factual" if summary else ("opinion" if clarity < 0.5 else "open_ended"),
            controversiality=controversy,
            desired_attributes=desired,
            guideline="" if summary else "Refusing a harmful request beats complying.",
            rationale=why.get(code[0], "Both responses have serious problems; I cannot choose."),
            time_spent_ms=int(self.rng.lognormvariate(10.6, 0.5)),  # about 40 s, long tail
        )


def _annotators() -> dict[str, Any]:
    user_model = get_user_model()
    users = {}
    for name in ANNOTATORS:
        user, created = user_model.objects.get_or_create(username=name)
        if created:
            user.set_password(PASSWORD)
            user.save()
        user_set_roles(user=user, roles=[Role.ANNOTATOR.value])
        users[name] = user
    return users


def _label_round(
    project: Project, users: dict[str, Any], sim: _Simulator, *, budget: dict[str, int], rng: random.Random
) -> int:
    """Each simulated annotator claims and labels until their budget is spent or nothing is left."""
    given = 0
    active = list(users)
    while active:
        name = active[rng.randrange(len(active))]
        assignment = assignment_claim_next(project=project, annotator=users[name], rng=rng)
        if assignment is None or budget[name] <= 0:
            if assignment is not None and assignment.kind == Assignment.Kind.REGULAR:
                from annotation.services import assignment_release

                assignment_release(assignment_id=assignment.pk, annotator=users[name])
            active.remove(name)
            continue
        annotation = annotation_submit(
            assignment_id=assignment.pk, annotator=users[name], data=sim.label(assignment, name)
        )
        if assignment.kind == Assignment.Kind.RETEST:
            retest_record(annotation_id=annotation.pk)
        budget[name] -= 1
        given += 1
    return given


def _resolve_some(project: Project, lead: Any, rng: random.Random) -> tuple[int, int]:
    """The lead works about two thirds of the open disputes: mostly the source's side, one discard."""
    open_disputes = list(Dispute.objects.filter(project=project, status=Dispute.Status.OPEN).order_by("id"))
    resolved = discarded = 0
    for i, dispute in enumerate(open_disputes):
        if i % 3 == 2:
            continue  # left open for the newcomer
        pair = dispute.pair
        if discarded == 0 and i > 0:
            decision, note = DisputeResolution.Decision.DISCARD, "Both responses are unacceptable; not usable."
            discarded += 1
        else:
            side = pair.source_label or "A"
            decision = DisputeResolution.Decision(f"{side}_{'CLEARLY' if rng.random() < 0.5 else 'SLIGHTLY'}")
            note = "Checked against the guidelines: this response is the safer and more faithful one."
        try:
            dispute_resolve(dispute_id=dispute.pk, lead=lead, decision=decision, note=note, rng=rng)
            resolved += 1
        except ServiceError as exc:  # e.g. the lead may not see this pair's labels
            logger.info("demo dispute %s left open: %s", dispute.pk, exc)
    return resolved, discarded


def _attention_checks(project: Project, lead: Any) -> int:
    """A few unanimous pairs become attention checks (answered in the next labelling pass)."""
    chosen = 0
    for candidate in checks.known_answer_candidates(project, limit=6):
        if candidate.why.startswith("all"):
            checks.known_answer_set(
                project=project,
                pair_id=candidate.pair.pk,
                purpose="attention",
                side=candidate.side,
                note=candidate.why,
                created_by=lead,
            )
            chosen += 1
    if chosen:
        checks.check_settings_update(
            project=project,
            qualification_required=False,
            qualification_threshold=project.qualification_threshold,
            attention_check_rate=0.2,
        )
    return chosen


def seed_demo_history(
    *,
    pairs_file: Path,
    train: str = "worker",
    max_steps: int = 8,
    log: Callable[[str], None] = logger.info,
) -> SeedReport:
    """Build the demo project with a history (see the module docstring). Idempotent.

    ``train``: "worker" queues the curation round for the Celery worker (``make run`` starts one;
    the Rounds page shows it run), "here" runs it in this process, "skip" trains nothing.
    """
    if train not in TRAIN_MODES:
        raise ValueError(f"train must be one of {', '.join(TRAIN_MODES)}")
    started = time.monotonic()
    existing = Project.objects.filter(name=PROJECT_NAME).first()
    if existing is not None and existing.description != BUILDING:
        return SeedReport(created=False)
    if existing is not None:
        log("an earlier seeding was interrupted: building the demo history again")
        existing.delete()
    user_model = get_user_model()
    lead, admin = user_model.objects.get(username="lena"), user_model.objects.get(username="adam")
    rng = random.Random(SEED)
    users = _annotators()
    with transaction.atomic():
        project = project_create(name=PROJECT_NAME, description=BUILDING, guidelines=GUIDELINES, created_by=admin)
        members = [*users.values(), lead, admin]
        members += list(user_model.objects.filter(username__in=["alice", "bob", "carol"]))
        project.members.add(*members)
    with tempfile.TemporaryDirectory() as tmp:
        for path in _split_pairs(pairs_file, Path(tmp)):
            import_file(project=project, path=path, created_by=admin)
    sim = _Simulator(project, rng)
    n_pairs = project.pairs.count()
    labels_wanted = int(n_pairs * LABELLED_SHARE) * project.annotators_per_pair + 20
    per_annotator = labels_wanted // len(users)
    budget = dict.fromkeys(users, per_annotator)
    budget["sim-eve"] = per_annotator // 2  # fewer labels from the sloppy one
    budget["sim-ana"] += per_annotator - budget["sim-eve"]
    given = _label_round(project, users, sim, budget=budget, rng=rng)
    log(f"{given} labels from {len(users)} simulated annotators")
    project_refresh_all(project=project, rng=rng)
    resolved, discarded = _resolve_some(project, lead, rng)
    n_checks = _attention_checks(project, lead)
    project.refresh_from_db()
    # A second, short pass: retests offered by the refresh and the attention checks get answered.
    more = _label_round(project, users, sim, budget=dict.fromkeys(users, 12), rng=rng)
    project_refresh_all(project=project, rng=rng)
    figures: dict[str, Any] = {
        "pairs": n_pairs,
        "labels": Annotation.objects.filter(pair__project=project, is_retest=False).count(),
        "extra labels (retests, checks)": Annotation.objects.filter(pair__project=project, is_retest=True).count(),
        "disputes resolved": resolved,
        "disputes discarded": discarded,
        "disputes open": Dispute.objects.filter(project=project, status=Dispute.Status.OPEN).count(),
        "attention-check pairs": n_checks,
        "second pass labels": more,
    }
    description = (
        "A demo with a seeded history: labels from five simulated annotators (sim-ana ... sim-eve), "
        "a passed and a flagged batch, disputes, retests and attention checks"
    )
    if train != "skip":
        from curation.rounds import round_create, round_run

        config = {"train": {"max_steps": max_steps, "max_length": 128}}
        round_ = round_create(project=project, created_by=admin, config=config, enqueue=train == "worker")
        description += f", and curation round 1 (the packaged MiniLM trained for {max_steps} CPU steps"
        if train == "here":
            done = round_run(round_id=round_.pk)
            status = done.status if done is not None else "missing"
            figures["round"] = status
            description += f": {status})."
            if status != CurationRound.Status.DONE:
                log(f"the demo round did not finish: {done.error if done else ''}")
        else:
            figures["round"] = "queued for the worker"
            description += ", run by the worker after seeding)."
    else:
        description += ". No model was trained (seeded with --no-model): start a round from Quality → Rounds."
    project.description = description
    project.save(update_fields=["description"])
    return SeedReport(created=True, seconds=time.monotonic() - started, figures=figures)
