"""One lifecycle for every background row (imports, code runs, AI questions, corpus loads,
training and evaluation jobs, curation rounds).

A job row moves ``queued -> running -> <terminal>``; this module owns every step of that walk so
each app writes only what its work produces:

- :func:`dispatch_on_commit` sends the row's task after the transaction commits. A broker error
  never reaches the user: the row stays queued with :data:`BROKER_NOTE` ("queued, will run when the
  worker is back") and :func:`maintain` sends it again.
- :func:`claim` is the compare-and-set ``queued -> running`` (a redelivered message finds nothing
  to claim), which also takes over a *running* row whose heartbeat stopped while attempts remain
  (the message redelivered after its worker was killed). It returns the attempt number, the token
  every later write of that run is conditioned on.
- :func:`beating` keeps ``heartbeat_at`` fresh from a thread while the work runs; a killed worker
  stops beating, and :func:`maintain` (Celery beat, every minute) requeues the row while attempts
  remain, else ends it failed with a message. It also re-sends rows whose dispatch failed and ends
  rows queued longer than their kind allows.
- :func:`finish` writes the outcome only if this attempt still owns the row.
- :func:`poll` is the one way an htmx status fragment stops polling.

Apps declare their kinds in ``<app>/jobs.py`` (found by :func:`kinds`); this module imports no app.
Rows carry :class:`JobFields` (``heartbeat_at``, ``attempts``, ``queued_at``, ``dispatched_at``,
``dispatch_note``), their own ``status`` and usually ``started_at``/``finished_at``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from celery import shared_task
from django.apps import apps
from django.conf import settings
from django.db import close_old_connections, connection, models, transaction
from django.db.models import F, Q
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.module_loading import autodiscover_modules, import_string

logger = logging.getLogger(__name__)

BROKER_NOTE = "Queued, will run when the worker is back (the task queue could not be reached)."
RETRY_NOTE = "The worker stopped while running this; it was queued again (attempt {attempt} of {max})."
LOST_MESSAGE = "No heartbeat for {seconds} s (worker lost: killed, crashed or restarted); {advice}"
STOP_POLLING = 286  # htmx: "stop polling" (django_htmx.http.HttpResponseStopPolling's status)
NEVER_PICKED_MESSAGE = "No worker picked this up within {minutes} minutes; {advice}"


class JobFields(models.Model):
    """The lifecycle fields every background row carries (mixed into each job model)."""

    queued_at = models.DateTimeField(null=True, blank=True, help_text="When the row was last queued.")
    dispatched_at = models.DateTimeField(
        null=True, blank=True, help_text="When its task was last handed to the broker (empty: not yet, or it failed)."
    )
    dispatch_note = models.CharField(max_length=300, blank=True, help_text="What the user is told while it waits.")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        abstract = True


@dataclass(frozen=True)
class JobKind:
    """How one model's rows walk the lifecycle.

    ``task`` is the dotted path of the Celery task object, called as ``task.delay(**{kwarg: pk})``.
    ``max_attempts`` counts runs: a row whose worker died is requeued while ``attempts`` is below it
    (1: never re-run automatically, e.g. user code that may have killed the worker itself).
    ``queued_timeout_s`` ends a row that no worker took in time (None: it waits, re-sent every
    ``resend_after_s``). ``on_end`` (dotted path, called with the pk) cleans up when the lifecycle
    ends a row (e.g. deletes an upload). ``fail_fields`` maps the failure message to the fields
    to write; by default ``{"error": message}``.
    """

    key: str
    model: str
    task: str
    kwarg: str
    queued: str = "queued"
    running: str = "running"
    failed: str = "failed"
    max_attempts: int = 1
    stale_after_s: Callable[[], int] = field(default=lambda: int(settings.JOBS_STALE_AFTER_S))
    queued_timeout_s: Callable[[], int | None] = field(default=lambda: int(settings.JOBS_QUEUED_TIMEOUT_S))
    resend_after_s: Callable[[], int | None] = field(default=lambda: int(settings.JOBS_RESEND_AFTER_S))
    retry_advice: str = "start it again."
    started_field: str | None = "started_at"
    finished_field: str | None = "finished_at"
    fail_fields: Callable[[str], dict[str, Any]] = field(default=lambda message: {"error": message})
    on_end: str | None = None

    @property
    def model_class(self) -> type[models.Model]:
        return apps.get_model(self.model)

    @property
    def objects(self) -> models.QuerySet[Any]:
        return self.model_class._default_manager.all()  # type: ignore[attr-defined, no-any-return]


_KINDS: dict[str, JobKind] = {}
_discovered = False


def register(kind: JobKind) -> JobKind:
    """Declare a kind (in ``<app>/jobs.py``); returns it so the module can keep a constant."""
    _KINDS[kind.key] = kind
    return kind


def kinds() -> list[JobKind]:
    """Every declared kind (imports each installed app's ``jobs`` module once)."""
    global _discovered
    if not _discovered:
        autodiscover_modules("jobs")
        _discovered = True
    return list(_KINDS.values())


# --- dispatch ----------------------------------------------------------------------------------


def dispatch(kind: JobKind, pk: int) -> bool:
    """Send the row's task now. Never raises: a broker error leaves the row queued with a note."""
    now = timezone.now()
    try:
        import_string(kind.task).delay(**{kind.kwarg: pk})
    except Exception as exc:  # kombu OperationalError, socket errors, a misconfigured URL: all the same to the user
        logger.warning("could not queue %s %s (%s: %s); it stays queued", kind.key, pk, type(exc).__name__, exc)
        kind.objects.filter(pk=pk, status=kind.queued).update(dispatched_at=None, dispatch_note=BROKER_NOTE)
        return False
    kind.objects.filter(pk=pk, status=kind.queued).update(dispatched_at=now)
    kind.objects.filter(pk=pk, dispatch_note=BROKER_NOTE).update(dispatch_note="")
    return True


def dispatch_on_commit(kind: JobKind, pk: int) -> None:
    """Send the task once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: dispatch(kind, pk))


def queued_fields() -> dict[str, Any]:
    """Fields that (re)queue a row: set them with the status when a row is created or resumed."""
    return {"queued_at": timezone.now(), "dispatched_at": None, "dispatch_note": ""}


# --- running -----------------------------------------------------------------------------------


def claim(kind: JobKind, pk: int, **fields: Any) -> int | None:
    """Compare-and-set the row to running; returns this run's attempt number, or None.

    Takes a queued row, or a running one whose heartbeat stopped while attempts remain (its worker
    died and the broker redelivered the message). Anything else (running elsewhere, finished,
    gone) returns None, so a duplicate or redelivered message does nothing.
    """
    now = timezone.now()
    cutoff = now - timedelta(seconds=kind.stale_after_s())
    takeover = Q(status=kind.running, heartbeat_at__lt=cutoff, attempts__lt=kind.max_attempts)
    if kind.max_attempts <= 1:
        takeover = Q(pk__in=[])  # never re-run automatically
    values: dict[str, Any] = {
        "status": kind.running,
        "heartbeat_at": now,
        "attempts": F("attempts") + 1,
        "dispatch_note": "",
        **fields,
    }
    if kind.started_field:
        values[kind.started_field] = now
    with transaction.atomic():
        if not kind.objects.filter(Q(pk=pk) & (Q(status=kind.queued) | takeover)).update(**values):
            logger.info("%s %s is not claimable; nothing to do", kind.key, pk)
            return None
        return int(kind.objects.filter(pk=pk).values_list("attempts", flat=True).get())


def owns(kind: JobKind, pk: int, attempt: int) -> models.QuerySet[Any]:
    """The row, if attempt ``attempt`` still holds it running (the filter every write of a run uses)."""
    return kind.objects.filter(pk=pk, status=kind.running, attempts=attempt)


def heartbeat(kind: JobKind, pk: int, attempt: int) -> bool:
    """Mark the run alive; False when it no longer owns the row (reaped or finished)."""
    return bool(owns(kind, pk, attempt).update(heartbeat_at=timezone.now()))


@contextmanager
def beating(kind: JobKind, pk: int, attempt: int, every_s: float | None = None) -> Iterator[None]:
    """Beat the row's heartbeat from a daemon thread while the block runs.

    The thread dies with the process, which is the point: a killed worker stops beating.
    """
    interval = float(every_s if every_s is not None else settings.JOBS_HEARTBEAT_S)
    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(interval):
                try:
                    heartbeat(kind, pk, attempt)
                except Exception as exc:  # a locked SQLite file or a dropped connection: try next time
                    logger.warning("heartbeat of %s %s failed: %s", kind.key, pk, exc)
        finally:
            connection.close()  # this thread's own connection

    thread = threading.Thread(target=beat, name=f"heartbeat-{kind.key}-{pk}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=interval + 5)


def finish(kind: JobKind, pk: int, attempt: int, status: str, **fields: Any) -> bool:
    """Write the run's outcome if attempt ``attempt`` still owns the row; False (nothing written) if not."""
    if kind.finished_field and kind.finished_field not in fields:
        fields[kind.finished_field] = timezone.now()
    done = bool(owns(kind, pk, attempt).update(status=status, **fields))
    if not done:
        logger.warning("%s %s attempt %s lost its row before finishing; its result is dropped", kind.key, pk, attempt)
    return done


# --- maintenance (Celery beat) -------------------------------------------------------------------


def _end_failed(kind: JobKind, rows: models.QuerySet[Any], message: str) -> list[int]:
    ended: list[int] = []
    for pk in list(rows.values_list("pk", flat=True)):
        values: dict[str, Any] = {"status": kind.failed, "dispatch_note": "", **kind.fail_fields(message)}
        if kind.finished_field:
            values[kind.finished_field] = timezone.now()
        # Re-check the condition row by row: the worker may have finished it since we listed it.
        if rows.filter(pk=pk).update(**values):
            ended.append(pk)
            if kind.on_end:
                try:
                    import_string(kind.on_end)(pk)
                except Exception:
                    logger.exception("cleanup of %s %s failed", kind.key, pk)
    return ended


def reap(kind: JobKind, *, now: Any = None) -> dict[str, int]:
    """One maintenance pass over a kind: requeue or fail rows whose worker died, re-send rows whose
    dispatch failed (or is old), fail rows queued too long. Returns counts by action."""
    now = now or timezone.now()
    counts = {"requeued": 0, "failed": 0, "resent": 0, "expired": 0}
    stale_s = kind.stale_after_s()
    stale = kind.objects.filter(status=kind.running).filter(
        Q(heartbeat_at__lt=now - timedelta(seconds=stale_s)) | Q(heartbeat_at__isnull=True)
    )
    retryable = stale.filter(attempts__lt=kind.max_attempts) if kind.max_attempts > 1 else stale.none()
    for pk, attempts in list(retryable.values_list("pk", "attempts")):
        note = RETRY_NOTE.format(attempt=attempts + 1, max=kind.max_attempts)
        if stale.filter(pk=pk, attempts=attempts).update(
            status=kind.queued, **{**queued_fields(), "dispatch_note": note}
        ):
            counts["requeued"] += 1
            dispatch(kind, pk)
    lost = LOST_MESSAGE.format(seconds=stale_s, advice=kind.retry_advice)
    counts["failed"] = len(_end_failed(kind, stale.exclude(pk__in=retryable.values("pk")), lost))

    timeout = kind.queued_timeout_s()
    queued = kind.objects.filter(status=kind.queued)
    if timeout is not None:
        old = queued.filter(queued_at__lt=now - timedelta(seconds=timeout))
        message = NEVER_PICKED_MESSAGE.format(minutes=max(1, round(timeout / 60)), advice=kind.retry_advice)
        counts["expired"] = len(_end_failed(kind, old, message))
    # A dispatch in flight has a few seconds to record itself before we send the task again.
    undelivered = queued.filter(dispatched_at__isnull=True, queued_at__lt=now - timedelta(seconds=10))
    resend = kind.resend_after_s()
    if resend is not None:
        undelivered = queued.filter(
            Q(pk__in=undelivered.values("pk")) | Q(dispatched_at__lt=now - timedelta(seconds=resend))
        )
    for pk in list(undelivered.values_list("pk", flat=True)):
        counts["resent"] += int(dispatch(kind, pk))
    return counts


def maintain() -> dict[str, dict[str, int]]:
    """:func:`reap` every declared kind; what beat runs every minute."""
    report = {}
    for kind in kinds():
        try:
            report[kind.key] = reap(kind)
        except Exception:  # one broken kind must not stop the others' maintenance
            logger.exception("maintenance of %s failed", kind.key)
    return report


def live(kind: JobKind, *, now: Any = None) -> Q:
    """Rows still alive: queued within the kind's timeout, or running with a fresh heartbeat.

    Limits that count a user's pending work count only these, so rows left by a dead worker or a
    broker outage never lock anyone out (the reaper ends them soon after anyway).
    """
    now = now or timezone.now()
    alive = Q(status=kind.running, heartbeat_at__gte=now - timedelta(seconds=kind.stale_after_s()))
    timeout = kind.queued_timeout_s()
    if timeout is None:
        return alive | Q(status=kind.queued)
    return alive | Q(status=kind.queued, queued_at__gte=now - timedelta(seconds=timeout))


@shared_task(name="config.jobs.maintain")
def maintain_task() -> dict[str, dict[str, int]]:
    """Beat: requeue or fail rows whose worker died, re-send undelivered ones, expire old queued ones."""
    close_old_connections()
    return maintain()


# --- htmx ----------------------------------------------------------------------------------------


def poll(request: HttpRequest, response: HttpResponse, *, finished: bool) -> HttpResponse:
    """The one way a polled status fragment stops: status 286 on an htmx request once the row has
    finished (htmx stops polling and still swaps the body in). Headers already set are kept."""
    if finished and getattr(request, "htmx", False):
        response.status_code = STOP_POLLING
    return response
