"""Every write of the annotator tools: corpora, searches, opened results, snippets, code runs, AI questions.

Who may use the tools on a pair is checked by the callers (views) through
:func:`annotation.tools.selectors.pair_get_for_tools`; these functions trust the ``pair`` they get.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Collection, Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from annotation.models import Assignment, Pair
from annotation.preference import LEFT, RIGHT, responses_in_order, side_shown_on
from annotation.services import ServiceError
from annotation.tools import llm, sandbox
from annotation.tools.corpus import read_jsonl
from annotation.tools.jobs import AI_QUERY, CODE_RUN, CORPUS_LOAD
from annotation.tools.models import (
    AIQuery,
    CodeRun,
    Corpus,
    CorpusDocument,
    EvidenceSnippet,
    SearchQuery,
    SearchResultOpened,
)
from annotation.tools.search import WebSearchError, available_backends, corpus_search, web_search
from config import jobs

logger = logging.getLogger(__name__)

MAX_QUERY_CHARS = 500
MAX_SNIPPET_CHARS = 5000
MAX_NOTE_CHARS = 2000
MAX_QUESTION_CHARS = 4000
LOAD_BATCH = 2000


# --- corpora -----------------------------------------------------------------------------------------


def corpus_load(
    *,
    name: str,
    documents: Iterable[dict[str, str]],
    licence: str = "",
    source: str = "",
    description: str = "",
    replace: bool = False,
    created_by: Any = None,
    corpus: Corpus | None = None,
) -> Corpus:
    """Load ``documents`` into the corpus called ``name`` (created if new) in batches.

    An existing corpus of that name is refused unless ``replace``, which deletes its documents
    first. Documents repeating an ``external_id`` already loaded are skipped. The search indexes
    follow by themselves (generated column on PostgreSQL, triggers on SQLite).
    """
    name = name.strip()
    if not name:
        raise ValidationError({"name": "a corpus needs a name"})
    if corpus is None:
        existing = Corpus.objects.filter(name=name).first()
        if existing is not None and not replace:
            raise ServiceError(
                f"a corpus named {name!r} is already loaded ({existing.n_documents} documents); use replace"
            )
        corpus = existing or Corpus(name=name, created_by=created_by)
        corpus.licence, corpus.source, corpus.description = licence[:500], source[:500], description
        corpus.status = Corpus.Status.LOADING
        corpus.error = ""
        corpus.full_clean()
        corpus.save()
        if existing is not None:
            CorpusDocument.objects.filter(corpus=corpus).delete()
    iterator: Iterator[dict[str, str]] = iter(documents)
    while batch := list(islice(iterator, LOAD_BATCH)):
        with transaction.atomic():
            CorpusDocument.objects.bulk_create(
                [
                    CorpusDocument(
                        corpus=corpus,
                        external_id=doc["external_id"],
                        title=doc["title"],
                        text=doc["text"],
                        source_url=doc.get("source_url", ""),
                    )
                    for doc in batch
                ],
                ignore_conflicts=True,
            )
    corpus.n_documents = CorpusDocument.objects.filter(corpus=corpus).count()
    corpus.status = Corpus.Status.READY
    corpus.save(update_fields=["n_documents", "status"])
    return corpus


def corpus_upload_create(*, upload: Any, name: str, licence: str, source: str, created_by: Any) -> Corpus:
    """Store an uploaded JSON Lines corpus and queue its loading on a worker (after commit).

    A broker outage leaves the corpus queued with a note; the jobs maintenance task sends it later.
    """
    name = name.strip()
    if Corpus.objects.filter(name=name).exists():
        raise ServiceError(f"a corpus named {name!r} already exists; delete it first or choose another name")
    settings.UPLOAD_DIR.mkdir(parents=True, exist_ok=True)
    path = Path(settings.UPLOAD_DIR) / f"corpus-{uuid.uuid4().hex}.jsonl"
    with path.open("wb") as out:
        for chunk in upload.chunks():
            out.write(chunk)
    corpus = Corpus(
        name=name,
        licence=licence,
        source=source,
        created_by=created_by,
        status=Corpus.Status.QUEUED,
        upload_path=str(path),
        **jobs.queued_fields(),
    )
    corpus.full_clean()
    with transaction.atomic():
        corpus.save()
        jobs.dispatch_on_commit(CORPUS_LOAD, corpus.pk)
    return corpus


def corpus_load_file(*, corpus_id: int, path: str | None = None) -> Corpus | None:
    """Load a queued corpus's upload (config/jobs.py lifecycle); a bad file marks it FAILED.

    Claimed by compare-and-set (queued -> loading). Documents already loaded are skipped, so a run
    retried after its worker died continues where it stopped. The upload is deleted when it ends.
    """
    attempt = jobs.claim(CORPUS_LOAD, corpus_id)
    if attempt is None:
        return None
    corpus = Corpus.objects.get(pk=corpus_id)
    file = Path(path or corpus.upload_path)
    with jobs.beating(CORPUS_LOAD, corpus_id, attempt):
        try:
            corpus_load(name=corpus.name, documents=read_jsonl(file), corpus=corpus)
        except Exception as exc:  # the row must never stay "loading"
            logger.exception("loading corpus %s failed", corpus_id)
            CorpusDocument.objects.filter(corpus=corpus).delete()
            ended = jobs.finish(
                CORPUS_LOAD,
                corpus_id,
                attempt,
                Corpus.Status.FAILED,
                error=str(exc)[:2000],
                n_documents=0,
                upload_path="",
            )
        else:
            ended = jobs.finish(
                CORPUS_LOAD,
                corpus_id,
                attempt,
                Corpus.Status.READY,
                n_documents=CorpusDocument.objects.filter(corpus=corpus).count(),
                upload_path="",
            )
    if ended:
        file.unlink(missing_ok=True)
    corpus.refresh_from_db()
    return corpus


def corpus_delete(*, corpus: Corpus) -> None:
    """Delete a corpus and its documents. Evidence that cited them keeps its title, URL and text."""
    with transaction.atomic():
        corpus.delete()


# --- search ------------------------------------------------------------------------------------------


def search_run(*, pair: Pair, user: Any, query: str, backend: str = "corpus") -> SearchQuery:
    """Run a search for ``user`` working on ``pair`` and record it with the results shown.

    A failing web search is recorded with its error (the annotator sees why); it never raises for it.
    """
    query = " ".join(query.split())
    if not query:
        raise ValidationError({"query": "type something to search for"})
    if len(query) > MAX_QUERY_CHARS:
        raise ValidationError({"query": f"at most {MAX_QUERY_CHARS} characters"})
    if backend not in available_backends():
        raise ValidationError({"backend": f"unknown or disabled search backend {backend!r}"})
    started = time.monotonic()
    record = SearchQuery(pair=pair, annotator=user, backend=backend, query=query)
    try:
        outcome = (
            web_search(query, limit=settings.SEARCH_RESULTS)
            if backend == "web"
            else corpus_search(query, limit=settings.SEARCH_RESULTS)
        )
        record.results = [hit.as_dict() for hit in outcome.hits]
        record.relaxed = outcome.relaxed
        record.capped = outcome.capped
    except WebSearchError as exc:
        record.error = str(exc)
    record.latency_ms = int((time.monotonic() - started) * 1000)
    record.save()
    return record


def _result(search: SearchQuery, rank: int) -> dict[str, Any]:
    for hit in search.results:
        if hit.get("rank") == rank:
            return hit
    raise ServiceError("that result is not part of this search")


def search_result_open(
    *, search: SearchQuery, rank: int, user: Any
) -> tuple[SearchResultOpened, CorpusDocument | None]:
    """Record that ``user`` opened result ``rank`` of their ``search``; return it with its document.

    Web results are not fetched by the server (no requests to arbitrary URLs on an annotator's
    behalf); the annotator follows the link in their own browser.
    """
    if search.annotator_id != user.pk:
        raise ServiceError("this search is not yours")
    hit = _result(search, rank)
    document = _document(hit)
    opened = SearchResultOpened.objects.create(
        pair_id=search.pair_id,
        annotator=user,
        search=search,
        rank=rank,
        title=hit.get("title", "")[:500],
        url=hit.get("url", "")[:1000],
        document=document,
    )
    return opened, document


def _document(hit: dict[str, Any]) -> CorpusDocument | None:
    document_id = hit.get("document_id")
    return CorpusDocument.objects.filter(pk=int(document_id)).first() if document_id else None


def _normalise_space(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def evidence_snippet_attach(*, search: SearchQuery, rank: int, user: Any, text: str, note: str = "") -> EvidenceSnippet:
    """Attach a passage of result ``rank`` of ``user``'s ``search`` to the pair as evidence.

    The source (title, URL, document) comes from the recorded search, never from the browser.
    For corpus documents we record whether the passage is verbatim in the document.
    """
    if search.annotator_id != user.pk:
        raise ServiceError("this search is not yours")
    hit = _result(search, rank)
    text = text.strip()
    if not text:
        raise ValidationError({"text": "select or paste the passage to attach"})
    if len(text) > MAX_SNIPPET_CHARS:
        raise ValidationError({"text": f"at most {MAX_SNIPPET_CHARS} characters"})
    if len(note) > MAX_NOTE_CHARS:
        raise ValidationError({"note": f"at most {MAX_NOTE_CHARS} characters"})
    document = _document(hit)
    verbatim = None
    if document is not None:
        verbatim = _normalise_space(text) in _normalise_space(f"{document.title}\n{document.text}")
    return EvidenceSnippet.objects.create(
        pair_id=search.pair_id,
        annotator=user,
        search=search,
        document=document,
        title=hit.get("title", "")[:500],
        url=hit.get("url", "")[:1000],
        text=text,
        note=note.strip(),
        is_verbatim=verbatim,
    )


# --- code runner ---------------------------------------------------------------------------------------


def _check_pending(kind: jobs.JobKind, user: Any) -> None:
    # Only live rows count: runs left by a dead worker or a broker outage never lock anyone out.
    pending = kind.objects.filter(jobs.live(kind), annotator=user).count()
    if pending >= settings.TOOLS_MAX_PENDING_PER_USER:
        raise ServiceError("wait for your earlier requests to finish before sending another")


def sandbox_limits() -> sandbox.Limits:
    return sandbox.Limits(
        cpu_seconds=settings.SANDBOX_CPU_SECONDS,
        wall_seconds=float(settings.SANDBOX_WALL_SECONDS),
        memory_mb=settings.SANDBOX_MEMORY_MB,
        processes=settings.SANDBOX_MAX_PROCESSES,
        disk_mb=settings.SANDBOX_DISK_MB,
        output_bytes=settings.SANDBOX_OUTPUT_BYTES,
    )


def code_run_create(*, pair: Pair, user: Any, code: str, language: str) -> CodeRun:
    """Record a run of ``code`` and queue it on the sandbox queue (after commit).

    A broker outage leaves the run queued with a note; it is re-sent, or fails after TOOLS_QUEUED_TIMEOUT_S.
    """
    if language not in sandbox.LANGUAGES:
        raise ValidationError({"language": f"choose one of {', '.join(sandbox.LANGUAGES)}"})
    if not code.strip():
        raise ValidationError({"code": "there is no code to run"})
    if len(code.encode("utf-8")) > settings.SANDBOX_MAX_CODE_BYTES:
        raise ValidationError({"code": f"at most {settings.SANDBOX_MAX_CODE_BYTES} bytes"})
    _check_pending(CODE_RUN, user)
    with transaction.atomic():
        run = CodeRun.objects.create(
            pair=pair,
            annotator=user,
            language=language,
            code=code,
            limits=sandbox_limits().as_dict(),
            **jobs.queued_fields(),
        )
        jobs.dispatch_on_commit(CODE_RUN, run.pk)
    return run


def code_run_execute(*, run_id: int) -> CodeRun | None:
    """Run a queued code run in the sandbox and store what happened (config/jobs.py lifecycle).

    Claimed by compare-and-set; never re-run after its worker died (the code may be what killed it):
    the reaper ends such a run failed with a message.
    """
    attempt = jobs.claim(CODE_RUN, run_id)
    if attempt is None:
        return None
    run = CodeRun.objects.get(pk=run_id)
    limits = sandbox.Limits.from_dict(run.limits) if run.limits else sandbox_limits()
    try:
        with jobs.beating(CODE_RUN, run_id, attempt):
            result = sandbox.run(
                run.code,
                language=run.language,
                limits=limits,
                mode=settings.SANDBOX_MODE,
                uid_range=(settings.SANDBOX_UID_MIN, settings.SANDBOX_UID_MAX),
                use_cgroup=settings.SANDBOX_USE_CGROUP,
                cgroup_parent_v2=settings.SANDBOX_CGROUP_PARENT,
            )
    except sandbox.SandboxUnavailable as exc:
        run.status = CodeRun.Status.REFUSED
        run.error = str(exc)
        run.sandbox = settings.SANDBOX_MODE
    except Exception as exc:  # the row must never stay "running"
        logger.exception("code run %s failed", run_id)
        run.status = CodeRun.Status.FAILED
        run.error = f"the code runner failed: {exc}"
    else:
        run.status = CodeRun.Status.DONE
        run.stdout, run.stderr = result.stdout, result.stderr
        run.stdout_truncated, run.stderr_truncated = result.stdout_truncated, result.stderr_truncated
        run.exit_code = result.exit_code
        run.signal = result.signal or ""
        run.wall_ms = int(result.wall_seconds * 1000)
        run.cpu_ms = int(result.cpu_seconds * 1000)
        run.limit_hit = result.limit_hit or ""
        run.limits = result.limits
        run.sandbox = result.sandbox
    run.finished_at = timezone.now()
    # NUL bytes cannot be stored in PostgreSQL text.
    run.stdout, run.stderr = run.stdout.replace("\x00", "\ufffd"), run.stderr.replace("\x00", "\ufffd")
    outcome = (
        "stdout stderr stdout_truncated stderr_truncated exit_code signal wall_ms cpu_ms limit_hit limits sandbox error"
    )
    jobs.finish(CODE_RUN, run_id, attempt, run.status, **{name: getattr(run, name) for name in outcome.split()})
    run.refresh_from_db()
    return run


# --- AI assist -----------------------------------------------------------------------------------------


def llm_config() -> llm.LLMConfig:
    return llm.LLMConfig(
        base_url=settings.LLM_BASE_URL,
        model=settings.LLM_MODEL,
        api_key=settings.LLM_API_KEY,
        response_format=settings.LLM_RESPONSE_FORMAT,
        timeout=settings.LLM_TIMEOUT,
        max_tokens=settings.LLM_MAX_TOKENS,
        temperature=settings.LLM_TEMPERATURE,
    )


def _order_for(pair: Pair, user: Any) -> str:
    """The order ``user`` sees the pair in: their live assignment's, else canonical (leads)."""
    order = (
        Assignment.objects.filter(pair=pair, annotator=user)
        .exclude(status=Assignment.Status.EXPIRED)
        .values_list("order_shown", flat=True)
        .first()
    )
    return order or Assignment.Order.AB


def ai_query_create(*, pair: Pair, user: Any, question: str) -> AIQuery:
    """Record the annotator's question and queue it for the judge LLM (after commit).

    A broker outage leaves it queued with a note; it is re-sent, or fails after TOOLS_QUEUED_TIMEOUT_S.
    """
    if not llm_config().is_configured:
        raise ServiceError("AI assist is not configured on this server.")
    question = question.strip()
    if not question:
        raise ValidationError({"question": "ask a question"})
    if len(question) > MAX_QUESTION_CHARS:
        raise ValidationError({"question": f"at most {MAX_QUESTION_CHARS} characters"})
    _check_pending(AI_QUERY, user)
    with transaction.atomic():
        query = AIQuery.objects.create(
            pair=pair,
            annotator=user,
            question=question,
            order_shown=_order_for(pair, user),
            model=settings.LLM_MODEL,
            **jobs.queued_fields(),
        )
        jobs.dispatch_on_commit(AI_QUERY, query.pk)
    return query


_VERDICT_TO_CANONICAL = {"tie": AIQuery.Verdict.TIE, "unsure": AIQuery.Verdict.UNSURE}


def ai_query_run(*, query_id: int) -> AIQuery | None:
    """Ask the judge LLM a queued question and store the answer (or the error) (config/jobs.py lifecycle)."""
    attempt = jobs.claim(AI_QUERY, query_id)
    if attempt is None:
        return None
    query = AIQuery.objects.select_related("pair").get(pk=query_id)
    pair = query.pair
    first, second = responses_in_order(pair.response_a, pair.response_b, query.order_shown)
    messages = llm.build_messages(pair.conversation, first, second, query.question)
    try:
        with jobs.beating(AI_QUERY, query_id, attempt):
            answer = llm.chat(llm_config(), messages)
    except llm.LLMError as exc:
        query.status = AIQuery.Status.FAILED
        query.error = str(exc)
    except Exception as exc:  # the row must never stay "running"
        logger.exception("AI query %s failed", query_id)
        query.status = AIQuery.Status.FAILED
        query.error = f"AI assist failed: {exc}"
    else:
        query.status = AIQuery.Status.DONE
        query.answer = answer.answer
        query.raw_response = answer.raw
        query.model = answer.model[:200]
        query.latency_ms = answer.latency_ms
        if answer.verdict in ("response_1", "response_2"):
            # Back to canonical A/B: response 1 is what the annotator saw on the left.
            query.verdict = side_shown_on(LEFT if answer.verdict == "response_1" else RIGHT, query.order_shown)
        else:
            query.verdict = _VERDICT_TO_CANONICAL.get(answer.verdict, AIQuery.Verdict.NONE)
    outcome = ("answer", "raw_response", "model", "latency_ms", "verdict", "error")
    jobs.finish(AI_QUERY, query_id, attempt, query.status, **{name: getattr(query, name) for name in outcome})
    query.refresh_from_db()
    return query


# --- sandbox housekeeping --------------------------------------------------------------------------------


def sandbox_cgroups_cleanup() -> list[str]:
    """Kill and remove run cgroups left by a worker that died (kill -9); returns the removed paths."""
    from annotation.tools import cgroups

    if not settings.SANDBOX_USE_CGROUP:
        return []
    removed = cgroups.cleanup_stale(settings.SANDBOX_CGROUP_PARENT)
    for path in removed:
        logger.warning("removed the cgroup of a code run whose worker died: %s", path)
    return [str(p) for p in removed]


def sandbox_cgroups_left(owners: Collection[int] | None = None) -> list[str]:
    """Run cgroups present where this worker creates them (none once every run has ended).

    ``owners``: only those of these worker pids (a shared hierarchy may hold other workers' runs).
    """
    from annotation.tools import cgroups

    return [str(p) for p in cgroups.run_cgroups(settings.SANDBOX_CGROUP_PARENT, owners=owners)]
