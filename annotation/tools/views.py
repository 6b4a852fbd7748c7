"""htmx panels of the annotator tools: fact-check search, code runner, AI assist, and the evidence list.

Each panel is a self-contained fragment with a stable root id, loaded into the labelling page by
``templates/annotation/tools/panels.html`` (``hx-get`` when its tab is first opened) and swapped ``outerHTML`` by its own
forms. Pairs a user may not use the tools on answer 404, so nothing about them leaks.
"""

from __future__ import annotations

import html
import re
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import trigger_client_event

from annotation.models import Assignment, Pair
from annotation.preference import responses_in_order
from annotation.roles import is_admin
from annotation.services import ServiceError
from annotation.tools import sandbox
from annotation.tools import selectors as tool_selectors
from annotation.tools import services as tool_services
from annotation.tools.codeblocks import CodeBlock, extract_code_blocks
from annotation.tools.forms import AIQuestionForm, CodeForm, CorpusUploadForm, SearchForm, SnippetForm
from annotation.tools.models import Corpus
from annotation.tools.search import available_backends
from config import jobs

EVIDENCE_CHANGED = "evidence-changed"


def _pair_for_tools(request: HttpRequest, pair_id: int) -> Pair:
    pair = tool_selectors.pair_get_for_tools(request.user, pair_id)
    if pair is None:
        raise Http404("No such pair.")
    return pair


def _errors(exc: ValidationError | ServiceError) -> list[str]:
    if isinstance(exc, ValidationError):
        return [str(m) for m in exc.messages]
    return [str(exc)]


def _with_evidence_event(response: HttpResponse) -> HttpResponse:
    return trigger_client_event(response, EVIDENCE_CHANGED, after="swap")


# --- search --------------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def search_panel(request: HttpRequest, pair_id: int) -> HttpResponse:
    """GET: the search panel. POST: run the search (recorded as evidence) and show ranked results."""
    pair = _pair_for_tools(request, pair_id)
    context: dict[str, Any] = {"pair": pair, "backends": available_backends(), "search": None, "errors": []}
    if request.method == "POST":
        form = SearchForm(request.POST)
        if form.is_valid():
            try:
                context["search"] = tool_services.search_run(
                    pair=pair, user=request.user, query=form.cleaned_data["query"], backend=form.cleaned_data["backend"]
                )
            except ValidationError as exc:
                context["errors"] = _errors(exc)
        else:
            context["errors"] = [str(e) for errors in form.errors.values() for e in errors]
    else:
        form = SearchForm()
    context["form"] = form
    response = render(request, "annotation/tools/search_panel.html", context)
    return _with_evidence_event(response) if context["search"] is not None else response


def _search_for(request: HttpRequest, search_id: int) -> Any:
    search = tool_selectors.search_get_for_user(request.user, search_id)
    if search is None:
        raise Http404("No such search.")
    return search


@login_required
@require_POST
def result_open(request: HttpRequest, search_id: int, rank: int) -> HttpResponse:
    """Open one result: recorded as evidence; shows the document (corpus) or a link (web)."""
    search = _search_for(request, search_id)
    try:
        opened, document = tool_services.search_result_open(search=search, rank=rank, user=request.user)
    except ServiceError as exc:
        raise Http404(str(exc)) from exc
    hit = next(h for h in search.results if h.get("rank") == rank)
    snippet_text = _plain(hit.get("snippet_html", ""))
    form = SnippetForm(initial={"text": snippet_text})
    response = render(
        request,
        "annotation/tools/result_opened.html",
        {"search": search, "hit": hit, "opened": opened, "document": document, "form": form},
    )
    return _with_evidence_event(response)


def _plain(snippet_html: str) -> str:
    return html.unescape(re.sub(r"</?mark>", "", snippet_html)).strip(" …")


@login_required
@require_POST
def snippet_attach(request: HttpRequest, search_id: int, rank: int) -> HttpResponse:
    """Attach a passage of an opened result to the pair as evidence."""
    search = _search_for(request, search_id)
    form = SnippetForm(request.POST)
    snippet = None
    errors: list[str] = []
    if form.is_valid():
        try:
            snippet = tool_services.evidence_snippet_attach(
                search=search,
                rank=rank,
                user=request.user,
                text=form.cleaned_data["text"],
                note=form.cleaned_data["note"],
            )
        except (ValidationError, ServiceError) as exc:
            errors = _errors(exc)
    else:
        errors = [str(e) for field_errors in form.errors.values() for e in field_errors]
    response = render(
        request,
        "annotation/tools/snippet_attach.html",
        {"search": search, "rank": rank, "form": form, "snippet": snippet, "errors": errors},
    )
    return _with_evidence_event(response) if snippet is not None else response


# --- code runner ---------------------------------------------------------------------------------------


def _code_blocks(pair: Pair, user: Any) -> list[CodeBlock]:
    order = (
        Assignment.objects.filter(pair=pair, annotator=user)
        .exclude(status=Assignment.Status.EXPIRED)
        .values_list("order_shown", flat=True)
        .first()
    ) or Assignment.Order.AB
    first, second = responses_in_order(pair.response_a, pair.response_b, order)
    last_user = next((m.get("content", "") for m in reversed(pair.conversation) if m.get("role") == "user"), "")
    return [
        *extract_code_blocks(first, "Left response"),
        *extract_code_blocks(second, "Right response"),
        *extract_code_blocks(last_user, "Prompt"),
    ]


@login_required
@require_http_methods(["GET", "POST"])
def code_panel(request: HttpRequest, pair_id: int) -> HttpResponse:
    """GET: the editor, prefilled with a code block of the responses (``?block=N``). POST: queue a run."""
    pair = _pair_for_tools(request, pair_id)
    blocks = _code_blocks(pair, request.user)
    run = None
    errors: list[str] = []
    if request.method == "POST":
        form = CodeForm(request.POST)
        if form.is_valid():
            try:
                run = tool_services.code_run_create(
                    pair=pair, user=request.user, code=form.cleaned_data["code"], language=form.cleaned_data["language"]
                )
            except (ValidationError, ServiceError) as exc:
                errors = _errors(exc)
    else:
        try:
            chosen = blocks[int(request.GET.get("block", "0"))] if blocks else None
        except (ValueError, IndexError):
            chosen = None
        initial = {
            "language": (chosen.language if chosen and chosen.language else "python"),
            "code": chosen.code if chosen else "",
        }
        form = CodeForm(initial=initial)
    context = {
        "pair": pair,
        "form": form,
        "blocks": blocks,
        "run": run,
        "errors": errors,
        "languages": sandbox.LANGUAGES.values(),
        "limits": tool_services.sandbox_limits(),
        "selected_block": request.GET.get("block", "0"),
    }
    response = render(request, "annotation/tools/code_panel.html", context)
    return _with_evidence_event(response) if run is not None else response


@login_required
@require_GET
def code_run_status(request: HttpRequest, run_id: int) -> HttpResponse:
    """The run's result; polled every second until it has finished (then 286 stops the polling)."""
    run = tool_selectors.code_run_get_for_user(request.user, run_id)
    if run is None:
        raise Http404("No such run.")
    response = render(request, "annotation/tools/code_run.html", {"run": run})
    if run.is_finished:
        return jobs.poll(request, _with_evidence_event(response), finished=True)
    return response


# --- AI assist -----------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def ai_panel(request: HttpRequest, pair_id: int) -> HttpResponse:
    """GET: the "Ask AI" panel (says so when AI assist is off). POST: queue the question."""
    pair = _pair_for_tools(request, pair_id)
    configured = tool_services.llm_config().is_configured
    query = None
    errors: list[str] = []
    if request.method == "POST":
        form = AIQuestionForm(request.POST)
        if not configured:
            errors = ["AI assist is not configured on this server."]
        elif form.is_valid():
            try:
                query = tool_services.ai_query_create(
                    pair=pair, user=request.user, question=form.cleaned_data["question"]
                )
            except (ValidationError, ServiceError) as exc:
                errors = _errors(exc)
    else:
        form = AIQuestionForm()
    context = {
        "pair": pair,
        "form": form,
        "query": query,
        "errors": errors,
        "configured": configured,
        "model": settings.LLM_MODEL,
    }
    response = render(request, "annotation/tools/ai_panel.html", context)
    return _with_evidence_event(response) if query is not None else response


@login_required
@require_GET
def ai_query_status(request: HttpRequest, query_id: int) -> HttpResponse:
    query = tool_selectors.ai_query_get_for_user(request.user, query_id)
    if query is None:
        raise Http404("No such question.")
    response = render(request, "annotation/tools/ai_query.html", {"query": query})
    if query.is_finished:
        return jobs.poll(request, _with_evidence_event(response), finished=True)
    return response


# --- evidence ------------------------------------------------------------------------------------------


@login_required
@require_GET
def pair_evidence(request: HttpRequest, pair_id: int) -> HttpResponse:
    """Leads: the pair's evidence by annotator (submitted annotators only). Annotators: their own."""
    pair, as_reviewer = tool_selectors.pair_get_for_evidence(request.user, pair_id)
    if pair is None:
        raise Http404("No such pair.")
    items = (
        tool_selectors.evidence_for_pair(pair)
        if as_reviewer
        else tool_selectors.evidence_for_annotator(pair, request.user)
    )
    return render(
        request, "annotation/tools/evidence_list.html", {"pair": pair, "items": items, "as_reviewer": as_reviewer}
    )


# --- corpora (admins) ----------------------------------------------------------------------------------


def _require_admin(request: HttpRequest) -> None:
    if not is_admin(request.user):
        raise PermissionDenied("Only admins can manage reference corpora.")


@login_required
@require_http_methods(["GET", "POST"])
def corpus_list(request: HttpRequest) -> HttpResponse:
    """The loaded corpora and an upload form (JSON Lines; loaded by a worker)."""
    _require_admin(request)
    if request.method == "POST":
        form = CorpusUploadForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                corpus = tool_services.corpus_upload_create(
                    upload=form.cleaned_data["file"],
                    name=form.cleaned_data["name"],
                    licence=form.cleaned_data["licence"],
                    source=form.cleaned_data["source"] or form.cleaned_data["file"].name,
                    created_by=request.user,
                )
            except (ValidationError, ServiceError) as exc:
                for message in _errors(exc):
                    form.add_error(None, message)
            else:
                messages.success(request, f"Corpus “{corpus.name}” is being loaded by a worker.")
                return redirect("annotation:tools:corpus-list")
    else:
        form = CorpusUploadForm()
    context = {"corpora": tool_selectors.corpus_list(), "form": form}
    return render(request, "annotation/tools/corpus_list.html", context)


@login_required
@require_POST
def corpus_delete(request: HttpRequest, corpus_id: int) -> HttpResponse:
    _require_admin(request)
    corpus = Corpus.objects.filter(pk=corpus_id).first()
    if corpus is None:
        raise Http404("No such corpus.")
    tool_services.corpus_delete(corpus=corpus)
    messages.success(request, f"Corpus “{corpus.name}” deleted.")
    return redirect("annotation:tools:corpus-list")
