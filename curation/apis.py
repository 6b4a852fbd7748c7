"""JSON API of curation: agreement, disputes, verified pairs, dataset versions, rounds, training on a version.

Same house style as ``annotation/apis.py``: one APIView per operation, nested Input/Output
serializers that do I/O only, one service or selector call per view (the same ones the pages
call). Roles as on the pages: leads and admins read and decide (annotators get 403, and a project
you are not a member of is 404); only admins start rounds or training. Errors: a service's
``ValidationError`` is 400 with field errors, a ``ServiceError`` (or a state conflict such as "a
round is already running") is 409 ``{"detail": message}``.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import FileResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import exceptions, serializers, status
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from annotation.models import Objectivity, Pair, Project
from annotation.permissions import IsAdminRole, IsLeadOrAdmin
from annotation.selectors import pair_labels_visible_to, project_get_for_user
from annotation.services import ServiceError
from config.apitools import FORBIDDEN_403, VALIDATION_400, ServiceApi, conflict_from, error_response
from curation import verdicts
from curation.dashboard import dashboard
from curation.datasets import dataset_version_file, dataset_version_get, dataset_version_list
from curation.disputes import dispute_get, dispute_list, dispute_resolve, dispute_review
from curation.models import BatchGate, CurationRound, DatasetVersion, Dispute, DisputeResolution, VerifiedPair
from curation.rounds import DEFAULT_ROUND_CONFIG, round_create
from curation.training import dataset_version_train
from rewardmodel.services import base_model_choices

NOT_FOUND_404 = error_response("No such object, or not one you may reach (non-members get 404, not 403).")
CONFLICT_409 = error_response("The request conflicts with the current state.")


class CurationApi(ServiceApi):
    """Leads and admins; a ``ServiceError`` is a 409."""

    permission_classes = [IsAuthenticated, IsLeadOrAdmin]
    conflict_exceptions = (ServiceError,)


class CurationAdminApi(CurationApi):
    permission_classes = [IsAuthenticated, IsAdminRole]


def _get_project(user: Any, project_id: int) -> Project:
    """A project the user can see (admins: all; leads: theirs), else 404."""
    project = project_get_for_user(user, project_id)
    if project is None:
        raise exceptions.NotFound("No such project.")
    return project


def _get_dispute(project: Project, dispute_id: int, user: Any) -> Dispute:
    """The dispute, else 404; 403 when ``user`` holds or may still label its pair (blindness per pair)."""
    dispute = dispute_get(project, dispute_id)
    if dispute is None:
        raise exceptions.NotFound("No such dispute.")
    if not pair_labels_visible_to(user, dispute.pair):
        raise exceptions.PermissionDenied("You hold or may still label this pair, so its labels are hidden from you.")
    return dispute


def _get_version(project: Project, version_id: int) -> DatasetVersion:
    version = dataset_version_get(project, version_id)
    if version is None:
        raise exceptions.NotFound("No such dataset version.")
    return version


def _get_round(project: Project, round_id: int) -> CurationRound:
    round_ = CurationRound.objects.filter(project=project, pk=round_id).first()
    if round_ is None:
        raise exceptions.NotFound("No such round.")
    return round_


def _state_error(exc: DjangoValidationError) -> exceptions.APIException:
    """A service's ValidationError: field errors are 400; a message about the state of things is 409."""
    if hasattr(exc, "error_dict"):
        return exceptions.ValidationError(serializers.as_serializer_error(exc))
    return conflict_from(exc)


# --- agreement -----------------------------------------------------------------------------------


class DimensionOutputSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    level = serializers.CharField(help_text="ordinal or nominal: the metric alpha uses.")
    alpha = serializers.FloatField(allow_null=True, help_text="Krippendorff's alpha; null when undefined.")

    class Meta:
        ref_name = "AgreementDimension"


class RetestOutputSerializer(serializers.Serializer):
    n = serializers.IntegerField(help_text="Retest labels compared with the verified label.")
    agree = serializers.IntegerField(help_text="Same side.")
    agree_strength = serializers.IntegerField(required=False, help_text="Same side and strength.")
    rate = serializers.FloatField(allow_null=True)

    class Meta:
        ref_name = "RetestFigures"


class AgreementProjectOutputSerializer(serializers.Serializer):
    alpha_threshold = serializers.FloatField()
    computed_at = serializers.DateTimeField(allow_null=True)
    n_units = serializers.IntegerField(help_text="Pairs with at least two labels.")
    n_labels = serializers.IntegerField()
    dimensions = DimensionOutputSerializer(many=True)
    desired_attributes = DimensionOutputSerializer(many=True)

    class Meta:
        ref_name = "AgreementProject"


class AgreementBatchOutputSerializer(serializers.Serializer):
    gate_id = serializers.IntegerField(source="gate.pk")
    batch_key = serializers.CharField(source="gate.batch_key")
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=BatchGate.Status.choices, source="gate.status")
    alpha = serializers.FloatField(allow_null=True, source="gate.alpha", help_text="Preference alpha.")
    threshold = serializers.FloatField(allow_null=True, source="gate.threshold")
    below_threshold = serializers.BooleanField(source="gate.is_below_threshold")
    n_pairs = serializers.IntegerField(source="gate.n_pairs")
    n_complete = serializers.IntegerField(source="gate.n_complete")
    n_units = serializers.IntegerField(source="gate.n_units")
    n_labels = serializers.IntegerField(source="gate.n_labels")
    computed_at = serializers.DateTimeField(allow_null=True, source="gate.computed_at")
    accepted_by = serializers.CharField(allow_null=True, source="gate.accepted_by.get_username", default=None)
    accept_note = serializers.CharField(source="gate.accept_note")
    dimensions = DimensionOutputSerializer(many=True)

    class Meta:
        ref_name = "AgreementBatch"


class AgreementAnnotatorOutputSerializer(serializers.Serializer):
    user_id = serializers.IntegerField()
    username = serializers.CharField()
    computed_at = serializers.DateTimeField(allow_null=True)
    agreement_rate = serializers.FloatField(allow_null=True, source="figures.agreement_rate", default=None)
    alpha_all = serializers.FloatField(allow_null=True, source="figures.alpha_all", default=None)
    alpha_without = serializers.FloatField(
        allow_null=True, source="figures.alpha_without", default=None, help_text="Preference alpha without them."
    )
    alpha_delta = serializers.FloatField(allow_null=True, source="figures.alpha_delta", default=None)
    n_decided = serializers.IntegerField(allow_null=True, source="figures.n_decided", default=None)
    n_compared = serializers.IntegerField(allow_null=True, source="figures.n_compared", default=None)
    retest = RetestOutputSerializer(source="figures.retest")

    class Meta:
        ref_name = "AgreementAnnotator"


class AgreementApi(CurationApi):
    """The Quality page's figures as JSON: alpha per dimension, per batch (with its gate), per annotator.

    Stored figures (what the workers last computed), plus live pair counts and retest figures.
    """

    class OutputSerializer(serializers.Serializer):
        project = AgreementProjectOutputSerializer()
        batches = AgreementBatchOutputSerializer(many=True)
        annotators = AgreementAnnotatorOutputSerializer(many=True)
        retest = serializers.DictField(help_text="n, agree, agree_strength, rate, offered, pending, no_annotator.")
        counts = serializers.DictField(
            child=serializers.IntegerField(),
            help_text="verified, verified_majority, verified_lead, disputes_open/resolved/discarded, waiting_for_gate.",
        )

        class Meta:
            ref_name = "Agreement"

    @extend_schema(tags=["curation"], responses={200: OutputSerializer, 403: FORBIDDEN_403, 404: NOT_FOUND_404})
    def get(self, request: Request, project_id: int) -> Response:
        project = _get_project(request.user, project_id)
        board = dashboard(project)
        latest = board.latest
        payload = {
            "project": {
                "alpha_threshold": board.settings.alpha_threshold,
                "computed_at": latest.computed_at if latest else None,
                "n_units": latest.n_units if latest else 0,
                "n_labels": latest.n_labels if latest else 0,
                "dimensions": board.dimensions,
                "desired_attributes": board.attributes,
            },
            "batches": board.batches,
            "annotators": board.annotators,
            "retest": board.retest,
            "counts": board.counts,
        }
        return Response(self.OutputSerializer(payload).data)


# --- disputes ------------------------------------------------------------------------------------


class DisputeOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    pair_id = serializers.IntegerField()
    batch_key = serializers.CharField()
    reason = serializers.ChoiceField(choices=Dispute.Reason.choices)
    status = serializers.ChoiceField(choices=Dispute.Status.choices)
    votes = serializers.DictField(child=serializers.IntegerField(), help_text='{"A": n, "B": n, "undecidable": n}')
    created_at = serializers.DateTimeField()
    closed_at = serializers.DateTimeField(allow_null=True)

    class Meta:
        ref_name = "Dispute"


class ResolutionOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    decision = serializers.ChoiceField(choices=DisputeResolution.Decision.choices)
    note = serializers.CharField()
    lead = serializers.CharField(allow_null=True, source="lead.get_username", default=None)
    created_at = serializers.DateTimeField()

    class Meta:
        ref_name = "DisputeResolution"


class VerifiedPairOutputSerializer(serializers.Serializer):
    pair_id = serializers.IntegerField()
    preference = serializers.CharField(help_text="The final label, e.g. A_CLEARLY (canonical A/B).")
    side = serializers.CharField(help_text="A or B: the better response.")
    strength = serializers.ChoiceField(choices=["clearly", "slightly"])
    via = serializers.ChoiceField(choices=VerifiedPair.Via.choices, help_text="How the label was reached.")
    pool = serializers.ChoiceField(choices=VerifiedPair.Pool.choices)
    votes = serializers.DictField(child=serializers.IntegerField())
    batch_key = serializers.CharField()
    verified_by = serializers.CharField(allow_null=True, source="verified_by.get_username", default=None)
    verified_at = serializers.DateTimeField()

    class Meta:
        ref_name = "VerifiedPair"


class DisputeListApi(CurationApi):
    """The dispute queue, newest first, keyset-paged: follow ``next`` (it carries ``before``)."""

    class FilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(
            choices=[*Dispute.Status.values, "all"], required=False, default=Dispute.Status.OPEN
        )
        before = serializers.IntegerField(required=False, min_value=1, help_text="Only disputes with a smaller id.")
        page_size = serializers.IntegerField(required=False, min_value=1, max_value=500, default=50)

    class OutputSerializer(serializers.Serializer):
        next = serializers.URLField(allow_null=True)
        results = DisputeOutputSerializer(many=True)

        class Meta:
            ref_name = "DisputePage"

    @extend_schema(
        tags=["curation"],
        operation_id="projects_disputes_list",
        parameters=[
            OpenApiParameter(
                "status",
                enum=[*Dispute.Status.values, "all"],
                default="open",
                description="Disputes in this state (`all`: every state).",
            ),
            OpenApiParameter("before", int, description="Keyset cursor: only disputes with an id below this."),
            OpenApiParameter("page_size", int, description="Disputes per page (default 50, at most 500)."),
        ],
        responses={200: OutputSerializer, 400: VALIDATION_400, 403: FORBIDDEN_403, 404: NOT_FOUND_404},
    )
    def get(self, request: Request, project_id: int) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        project = _get_project(request.user, project_id)
        data = filters.validated_data
        size = data["page_size"]
        disputes = dispute_list(
            project,
            status="" if data["status"] == "all" else data["status"],
            before=data.get("before"),
            limit=size + 1,
        )
        more = len(disputes) > size
        disputes = disputes[:size]
        next_url = None
        if more and disputes:
            query = request.query_params.copy()
            query["before"] = str(disputes[-1].pk)
            next_url = request.build_absolute_uri(f"{request.path}?{query.urlencode()}")
        return Response(self.OutputSerializer({"next": next_url, "results": disputes}).data)


class DisputeLabelOutputSerializer(serializers.Serializer):
    """One annotator's label on the disputed pair: canonical A/B, the five attributes, rationale, time."""

    id = serializers.IntegerField()
    annotator_id = serializers.IntegerField()
    annotator = serializers.CharField(source="annotator.get_username")
    preference = serializers.CharField(help_text="Canonical A/B, e.g. A_SLIGHTLY or UNDECIDABLE.")
    order_shown = serializers.CharField(help_text="AB or BA: the order the annotator saw.")
    task_category = serializers.CharField()
    objectivity = serializers.ChoiceField(choices=Objectivity.choices)
    controversiality = serializers.CharField()
    desired_attributes = serializers.ListField(child=serializers.CharField())
    guideline = serializers.CharField()
    rationale = serializers.CharField()
    time_spent_ms = serializers.IntegerField()
    is_retest = serializers.BooleanField()
    submitted_at = serializers.DateTimeField()

    class Meta:
        ref_name = "DisputeLabel"


class EvidenceOutputSerializer(serializers.Serializer):
    kind = serializers.CharField(help_text="search, passage, code_run, ai_question, ...")
    annotator = serializers.CharField()
    created_at = serializers.DateTimeField()
    fields = serializers.DictField(help_text="The item as exported (query, results, code, output, answer...).")

    class Meta:
        ref_name = "ToolEvidence"


class DisputedPairOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    external_id = serializers.CharField()
    conversation = serializers.ListField(child=serializers.DictField(), help_text="[{role, content}]")
    response_a = serializers.CharField()
    response_b = serializers.CharField()
    source_label = serializers.ChoiceField(choices=Pair.SourceLabel.choices)
    source = serializers.CharField()
    subset = serializers.CharField()

    class Meta:
        ref_name = "DisputedPair"


class GateSummaryOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=BatchGate.Status.choices)
    alpha = serializers.FloatField(allow_null=True)
    threshold = serializers.FloatField(allow_null=True)

    class Meta:
        ref_name = "BatchGateSummary"


class PredictionOutputSerializer(serializers.Serializer):
    model_name = serializers.CharField()
    model_version_id = serializers.IntegerField()
    r_a = serializers.FloatField()
    r_b = serializers.FloatField()
    p_a = serializers.FloatField(help_text="The model's probability that A is better.")
    scored_at = serializers.DateTimeField()

    class Meta:
        ref_name = "PairPrediction"


class DisputeDetailApi(CurationApi):
    """A dispute with everything a lead needs: the pair, every label with its attributes and rationale,
    retest labels, tool evidence, past decisions, the batch's gate and the current reward model's prediction."""

    class OutputSerializer(DisputeOutputSerializer):
        pair = DisputedPairOutputSerializer()
        labels = DisputeLabelOutputSerializer(many=True)
        retest_labels = DisputeLabelOutputSerializer(many=True)
        evidence = EvidenceOutputSerializer(many=True)
        resolutions = ResolutionOutputSerializer(many=True)
        gate = GateSummaryOutputSerializer(allow_null=True)
        verification = VerifiedPairOutputSerializer(allow_null=True)
        prediction = PredictionOutputSerializer(allow_null=True)

        class Meta:
            ref_name = "DisputeDetail"

    @extend_schema(tags=["curation"], responses={200: OutputSerializer, 403: FORBIDDEN_403, 404: NOT_FOUND_404})
    def get(self, request: Request, project_id: int, dispute_id: int) -> Response:
        project = _get_project(request.user, project_id)
        dispute = _get_dispute(project, dispute_id, request.user)
        review = dispute_review(project, dispute)
        payload = {
            **{name: getattr(dispute, name) for name in DisputeOutputSerializer().fields},
            "pair": review.pair,
            "labels": review.labels,
            "retest_labels": review.retest_labels,
            "evidence": review.evidence,
            "resolutions": review.resolutions,
            "gate": review.gate,
            "verification": review.verification,
            "prediction": review.prediction,
        }
        return Response(self.OutputSerializer(payload).data)


class DecisionOutputSerializer(serializers.Serializer):
    dispute = DisputeOutputSerializer()
    resolution = ResolutionOutputSerializer()
    verified = VerifiedPairOutputSerializer(allow_null=True, help_text="The pair's verified label, when it has one.")
    waiting_for_gate = serializers.BooleanField(
        help_text="Resolved, but the batch's gate is not open: the pair is verified once it opens."
    )

    class Meta:
        ref_name = "DisputeDecision"


def _decide(request: Request, project_id: int, dispute_id: int, decision: str, note: str) -> Response:
    project = _get_project(request.user, project_id)
    dispute = _get_dispute(project, dispute_id, request.user)
    result = dispute_resolve(dispute_id=dispute.pk, lead=request.user, decision=decision, note=note)
    dispute.refresh_from_db()
    payload = {
        "dispute": dispute,
        "resolution": result.resolution,
        "verified": result.verified,
        "waiting_for_gate": result.waiting_for_gate,
    }
    return Response(DecisionOutputSerializer(payload).data)


class DisputeResolveApi(CurationApi):
    """Decide a dispute with a final label and a note (the latest decision counts; each one is kept)."""

    class InputSerializer(serializers.Serializer):
        decision = serializers.ChoiceField(
            choices=[d for d in DisputeResolution.Decision.values if d != DisputeResolution.Decision.DISCARD],
            help_text="The final label, canonical A/B.",
        )
        note = serializers.CharField(help_text="Why; kept with the decision.")

        class Meta:
            ref_name = "DisputeResolve"

    @extend_schema(
        tags=["curation"],
        request=InputSerializer,
        responses={200: DecisionOutputSerializer, 400: VALIDATION_400, 403: FORBIDDEN_403, 404: NOT_FOUND_404},
    )
    def post(self, request: Request, project_id: int, dispute_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return _decide(request, project_id, dispute_id, **serializer.validated_data)


class DisputeDiscardApi(CurationApi):
    """Discard a disputed pair: it leaves D_gold (and any export of verified data)."""

    class InputSerializer(serializers.Serializer):
        note = serializers.CharField(help_text="Why; kept with the decision.")

        class Meta:
            ref_name = "DisputeDiscard"

    @extend_schema(
        tags=["curation"],
        request=InputSerializer,
        responses={200: DecisionOutputSerializer, 400: VALIDATION_400, 403: FORBIDDEN_403, 404: NOT_FOUND_404},
    )
    def post(self, request: Request, project_id: int, dispute_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        note = serializer.validated_data["note"]
        return _decide(request, project_id, dispute_id, DisputeResolution.Decision.DISCARD, note)


# --- verified pairs ------------------------------------------------------------------------------


class VerifiedPairPagination(CursorPagination):
    """Keyset pagination by pair id."""

    ordering = "pair_id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


class VerifiedPairListApi(CurationApi):
    """Verified pairs (D_gold, and D_silver once rounds write it) with their final label and how it was reached."""

    pagination_class = VerifiedPairPagination

    class FilterSerializer(serializers.Serializer):
        pool = serializers.ChoiceField(choices=VerifiedPair.Pool.choices, required=False)
        via = serializers.ChoiceField(choices=VerifiedPair.Via.choices, required=False)

    @extend_schema(
        tags=["curation"],
        parameters=[
            OpenApiParameter("pool", enum=VerifiedPair.Pool.values, description="Only this pool."),
            OpenApiParameter("via", enum=VerifiedPair.Via.values, description="Only labels reached this way."),
            OpenApiParameter("page_size", int, description="Pairs per page (default 100, at most 1000)."),
        ],
        responses={
            200: VerifiedPairOutputSerializer(many=True),
            400: VALIDATION_400,
            403: FORBIDDEN_403,
            404: NOT_FOUND_404,
        },
    )
    def get(self, request: Request, project_id: int) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        project = _get_project(request.user, project_id)
        rows = VerifiedPair.objects.filter(project=project, **filters.validated_data).select_related("verified_by")
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(rows, request, view=self)
        return paginator.get_paginated_response(VerifiedPairOutputSerializer(page, many=True).data)


class VerdictOutputSerializer(serializers.Serializer):
    pair_id = serializers.IntegerField()
    state = serializers.ChoiceField(
        choices=verdicts.STATES,
        help_text="verified | pending (waiting for its batch gate) | disputed | discarded | incomplete.",
    )
    settled = serializers.BooleanField(help_text="Verified or discarded.")
    side = serializers.CharField(allow_null=True, help_text="A or B: the label the pair stands for now, if any.")
    strength = serializers.CharField(allow_null=True)
    preference = serializers.CharField(allow_null=True, help_text="The canonical code, e.g. A_CLEARLY.")
    via = serializers.CharField(allow_null=True, help_text="majority, lead, judge, filter.")
    pool = serializers.CharField(allow_null=True, help_text="gold or silver.")
    votes = serializers.DictField(child=serializers.IntegerField())
    majority = serializers.CharField(allow_null=True, help_text="The annotators' raw majority under the one rule.")
    reason = serializers.CharField(allow_null=True, help_text="The dispute's reason, if any.")


class PairVerdictApi(CurationApi):
    """One pair's verdict, from the one owner of verdicts (``curation.verdicts``), as export and pages read it.

    Blindness: a lead who holds, or may still take, a claim on the pair gets 403 until they have labelled it.
    """

    @extend_schema(
        tags=["curation"],
        responses={200: VerdictOutputSerializer, 403: FORBIDDEN_403, 404: NOT_FOUND_404},
    )
    def get(self, request: Request, project_id: int, pair_id: int) -> Response:
        project = _get_project(request.user, project_id)
        pair = Pair.objects.filter(project=project, pk=pair_id).first()
        if pair is None:
            raise exceptions.NotFound("No such pair in this project.")
        if not pair_labels_visible_to(request.user, pair):
            raise exceptions.PermissionDenied("You may still label this pair: its verdict is hidden until you have.")
        v = verdicts.pair_verdict_get(pair)
        return Response(VerdictOutputSerializer({**asdict(v), "settled": v.settled, "preference": v.preference}).data)


# --- dataset versions ----------------------------------------------------------------------------


class DataFileSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    sha256 = serializers.CharField()
    n_records = serializers.IntegerField()

    class Meta:
        ref_name = "DataFileSummary"


class DatasetVersionOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    round_id = serializers.IntegerField(allow_null=True)
    round_number = serializers.IntegerField(allow_null=True, source="round.number", default=None)
    train_data = DataFileSummarySerializer()
    eval_data = DataFileSummarySerializer(allow_null=True)
    filters = serializers.DictField(help_text="How the snapshot was selected.")
    counts = serializers.DictField(help_text="Records per part, e.g. silver, gold_train, gold_val.")
    created_by = serializers.CharField(allow_null=True, source="created_by.get_username", default=None)
    created_at = serializers.DateTimeField()
    downloads = serializers.SerializerMethodField()

    class Meta:
        ref_name = "DatasetVersion"

    @extend_schema_field(serializers.DictField(child=serializers.URLField()))
    def get_downloads(self, version: DatasetVersion) -> dict[str, str]:
        """Download URLs by part (``train``; ``gold`` when the version has a validation file)."""
        request = self.context["request"]
        parts = ["train"] + (["gold"] if version.eval_data_id else [])
        return {
            part: request.build_absolute_uri(
                reverse(
                    "curation_api:dataset-version-download",
                    kwargs={"project_id": version.project_id, "version_id": version.pk},
                )
                + f"?part={part}"
            )
            for part in parts
        }


class DatasetVersionPagination(CursorPagination):
    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class DatasetVersionListApi(CurationApi):
    """A project's frozen dataset versions, newest first, with counts, filters and provenance."""

    pagination_class = DatasetVersionPagination

    @extend_schema(
        tags=["datasets"],
        responses={200: DatasetVersionOutputSerializer(many=True), 403: FORBIDDEN_403, 404: NOT_FOUND_404},
    )
    def get(self, request: Request, project_id: int) -> Response:
        project = _get_project(request.user, project_id)
        versions = dataset_version_list(project)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(versions, request, view=self)
        data = DatasetVersionOutputSerializer(page, many=True, context={"request": request}).data
        return paginator.get_paginated_response(data)


class DatasetVersionDownloadApi(CurationApi):
    """One part of a dataset version as JSON Lines: ``train`` (training file) or ``gold`` (D_gold validation)."""

    class FilterSerializer(serializers.Serializer):
        part = serializers.ChoiceField(choices=["train", "gold"], required=False, default="train")

    @extend_schema(
        tags=["datasets"],
        parameters=[OpenApiParameter("part", enum=["train", "gold"], default="train", description="Which file.")],
        responses={
            (200, "application/x-ndjson"): OpenApiResponse(
                response=OpenApiTypes.STR, description="One record per line: prompt, chosen, rejected, ..."
            ),
            400: VALIDATION_400,
            403: FORBIDDEN_403,
            404: NOT_FOUND_404,
        },
    )
    def get(self, request: Request, project_id: int, version_id: int) -> FileResponse:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        project = _get_project(request.user, project_id)
        version = _get_version(project, version_id)
        part = filters.validated_data["part"]
        data = dataset_version_file(version, part)
        if data is None:
            raise exceptions.NotFound("This dataset version has no D_gold validation file.")
        filename = f"{project.name}-{version.name}-{part}.jsonl".replace(" ", "-")
        return FileResponse(
            Path(data.path).open("rb"), as_attachment=True, filename=filename, content_type="application/x-ndjson"
        )


class TrainConfigInputSerializer(serializers.Serializer):
    num_epochs = serializers.IntegerField(required=False, min_value=1)
    learning_rate = serializers.FloatField(required=False, min_value=0)
    batch_size = serializers.IntegerField(required=False, min_value=1)
    max_length = serializers.IntegerField(required=False, min_value=16)
    max_steps = serializers.IntegerField(required=False, min_value=0, help_text="> 0 caps training steps.")
    eval_every = serializers.IntegerField(required=False, min_value=0)

    class Meta:
        ref_name = "RoundTrainConfig"


def _validate_base_model(value: str) -> str:
    allowed = [v for v, _label in base_model_choices()]
    if value not in allowed:
        raise serializers.ValidationError(f"{value!r} is not a configured base model; choose one of {allowed}")
    return value


class DatasetVersionTrainApi(CurationAdminApi):
    """Train a reward model on a dataset version (admins): its training file, validated on its D_gold file.

    The job is a regular reward-model training job (scope ``project:<id>``); follow ``status_url``.
    """

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=200, required=False, default="")
        base_model = serializers.CharField(required=False, default="default", validators=[_validate_base_model])
        train = TrainConfigInputSerializer(required=False, default=dict)

        class Meta:
            ref_name = "DatasetVersionTrain"

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField(help_text="The training job.")
        status = serializers.CharField()
        status_url = serializers.URLField()

        class Meta:
            ref_name = "DatasetVersionTrainQueued"

    @extend_schema(
        tags=["datasets"],
        request=InputSerializer,
        responses={
            202: OpenApiResponse(response=OutputSerializer, description="Queued; poll `status_url`."),
            400: VALIDATION_400,
            403: FORBIDDEN_403,
            404: NOT_FOUND_404,
        },
    )
    def post(self, request: Request, project_id: int, version_id: int) -> Response:
        project = _get_project(request.user, project_id)
        version = _get_version(project, version_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        job = dataset_version_train(
            version=version,
            name=data["name"],
            base_model=data["base_model"],
            config=dict(data["train"]),
            created_by=request.user,
        )
        url = request.build_absolute_uri(reverse("rewardmodel_api:training-job-detail", kwargs={"job_id": job.pk}))
        payload = {"id": job.pk, "status": job.status, "status_url": url}
        return Response(self.OutputSerializer(payload).data, status=status.HTTP_202_ACCEPTED, headers={"Location": url})


# --- rounds --------------------------------------------------------------------------------------


class RoundStepOutputSerializer(serializers.Serializer):
    key = serializers.ChoiceField(choices=list(CurationRound.STEPS))
    label = serializers.CharField()
    status = serializers.CharField(help_text="pending, running, done or failed.")
    progress = serializers.FloatField(required=False)
    detail = serializers.CharField(required=False)
    started_at = serializers.CharField(required=False)
    finished_at = serializers.CharField(required=False)

    class Meta:
        ref_name = "RoundStep"


class RoundOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.IntegerField()
    status = serializers.ChoiceField(choices=CurationRound.Status.choices)
    is_finished = serializers.BooleanField()
    config = serializers.DictField()
    steps = RoundStepOutputSerializer(many=True, source="step_rows")
    metrics = serializers.DictField(help_text="data counts, gold_accuracy, previous_gold_accuracy, accuracy_delta, ...")
    dataset_version_id = serializers.IntegerField(allow_null=True)
    training_job_id = serializers.IntegerField(allow_null=True)
    model_version_id = serializers.IntegerField(allow_null=True)
    error = serializers.CharField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)

    class Meta:
        ref_name = "CurationRound"


class RoundListApi(CurationApi):
    """GET: a project's curation rounds, newest first (leads and admins). POST: start the next one (admins).

    A round runs on the ``gpu`` queue: freeze a dataset version, train, score D_gold, embed and
    retrieve around mispredictions, queue them. One round per project at a time (409 otherwise).
    """

    class InputSerializer(serializers.Serializer):
        base_model = serializers.CharField(
            required=False, default=DEFAULT_ROUND_CONFIG["base_model"], validators=[_validate_base_model]
        )
        k_max = serializers.IntegerField(
            required=False, min_value=1, max_value=64, default=DEFAULT_ROUND_CONFIG["k_max"]
        )
        gold_val_fraction = serializers.FloatField(
            required=False, min_value=0.01, max_value=1.0, default=DEFAULT_ROUND_CONFIG["gold_val_fraction"]
        )
        train = TrainConfigInputSerializer(required=False, default=dict)

        class Meta:
            ref_name = "RoundStart"

    class QueuedSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        number = serializers.IntegerField()
        status = serializers.ChoiceField(choices=CurationRound.Status.choices)
        status_url = serializers.URLField()

        class Meta:
            ref_name = "RoundQueued"

    def get_permissions(self) -> list[Any]:
        if self.request.method == "POST":
            return [IsAuthenticated(), IsAdminRole()]
        return super().get_permissions()

    @extend_schema(
        tags=["curation"], responses={200: RoundOutputSerializer(many=True), 403: FORBIDDEN_403, 404: NOT_FOUND_404}
    )
    def get(self, request: Request, project_id: int) -> Response:
        project = _get_project(request.user, project_id)
        rounds = CurationRound.objects.filter(project=project).order_by("-number")
        return Response(RoundOutputSerializer(rounds, many=True).data)

    @extend_schema(
        tags=["curation"],
        request=InputSerializer,
        responses={
            202: OpenApiResponse(response=QueuedSerializer, description="Queued; poll `status_url`."),
            400: VALIDATION_400,
            403: FORBIDDEN_403,
            404: NOT_FOUND_404,
            409: error_response("A round of this project is already queued or running."),
        },
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = _get_project(request.user, project_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        config = dict(serializer.validated_data)
        config["train"] = dict(config.get("train") or {})
        try:
            round_ = round_create(project=project, created_by=request.user, config=config)
        except DjangoValidationError as exc:
            raise _state_error(exc) from None
        url = request.build_absolute_uri(
            reverse("curation_api:round-detail", kwargs={"project_id": project.pk, "round_id": round_.pk})
        )
        payload = {"id": round_.pk, "number": round_.number, "status": round_.status, "status_url": url}
        return Response(self.QueuedSerializer(payload).data, status=status.HTTP_202_ACCEPTED, headers={"Location": url})


class RoundDetailApi(CurationApi):
    """A round's status: each step's state and detail, metrics, and the version, job and model it made."""

    @extend_schema(tags=["curation"], responses={200: RoundOutputSerializer, 403: FORBIDDEN_403, 404: NOT_FOUND_404})
    def get(self, request: Request, project_id: int, round_id: int) -> Response:
        project = _get_project(request.user, project_id)
        return Response(RoundOutputSerializer(_get_round(project, round_id)).data)
