"""JSON API (DRF): one APIView per operation, nested Input/Output serializers that do I/O only.

Views validate input, look the object up through a private helper that answers 404 to anyone who
may not reach it (so existence is not leaked), call one service or selector, and serialize.
Errors: a service's ``ValidationError`` becomes 400 with field errors, a ``ServiceError`` becomes
409 ``{"detail": message}``.

Annotators only ever see and answer in left/right terms (``annotation.preference``); canonical A/B
letters, ``order_shown`` and the source label are for leads and admins.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Prefetch, prefetch_related_objects
from django.urls import reverse
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import exceptions, serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import APIView

from annotation.models import (
    Annotation,
    Assignment,
    Controversiality,
    ImportBatch,
    Objectivity,
    Pair,
    Preference,
    Project,
)
from annotation.permissions import IsAdminRole, IsAnnotator, IsLeadOrAdmin
from annotation.preference import SHOWN_CHOICES, canonical_to_shown, responses_in_order
from annotation.roles import is_annotator
from annotation.selectors import (
    annotation_get_for_annotator,
    annotation_list_for_pair,
    assignment_get_for_annotator,
    assignment_get_for_pair,
    import_batch_get_for_user,
    pair_get_for_user,
    pair_labels_visible_to,
    pair_list,
    project_get_for_member,
    project_get_for_user,
    project_list_for_user,
    project_progress,
)
from annotation.services import (
    AnnotationInput,
    ServiceError,
    annotation_submit,
    assignment_claim_next,
    assignment_release,
    import_batch_create,
    project_create,
    project_update,
)
from annotation.tokens import ExpiringTokenAuthentication
from config.apitools import Conflict, ErrorOutputSerializer

# --- plumbing ----------------------------------------------------------------------------------


class BaseApi(APIView):
    """Maps service errors to HTTP (HackSoft ``ApiErrorsMixin``).

    Token authentication is listed first so that an anonymous request gets 401 with
    ``WWW-Authenticate: Token`` (DRF takes the header from the first class); a browser session
    still works, with CSRF checks on writes.
    """

    authentication_classes = [ExpiringTokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated]

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, DjangoValidationError):
            exc = exceptions.ValidationError(as_serializer_error(exc))
        elif isinstance(exc, ServiceError):
            exc = Conflict(str(exc))
        return super().handle_exception(exc)


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(response=ErrorOutputSerializer, description=description)


VALIDATION_400 = OpenApiResponse(description="Validation failed: an object mapping each field name to its messages.")
NOT_FOUND_404 = _error("No such object, or not one you may reach (non-members get 404, not 403).")
FORBIDDEN_403 = _error("Your role does not allow this.")


def _get_project_for_user(user: Any, project_id: int) -> Project:
    """A project the user can see (admins: all; others: their projects), else 404."""
    project = project_get_for_user(user, project_id)
    if project is None:
        raise exceptions.NotFound("No such project.")
    return project


def _get_project_for_member(user: Any, project_id: int) -> Project:
    """A project the user is an explicit member of, else 404."""
    project = project_get_for_member(user, project_id)
    if project is None:
        raise exceptions.NotFound("No such project.")
    return project


def _get_assignment_for_annotator(user: Any, assignment_id: int) -> Assignment:
    """One of the user's own assignments, else 404 (someone else's looks the same as a missing one)."""
    assignment = assignment_get_for_annotator(assignment_id=assignment_id, annotator=user)
    if assignment is None:
        raise exceptions.NotFound("No such assignment.")
    return assignment


def _shown_annotation(annotation: Annotation) -> dict[str, Any]:
    """An annotation as its annotator sees it: the preference in left/right terms."""
    return {
        "id": annotation.pk,
        "assignment_id": annotation.assignment_id,
        "pair_id": annotation.pair_id,
        "preference": canonical_to_shown(annotation.preference, annotation.order_shown),
        "task_category": annotation.task_category,
        "objectivity": annotation.objectivity,
        "controversiality": annotation.controversiality,
        "desired_attributes": annotation.desired_attributes,
        "guideline": annotation.guideline,
        "rationale": annotation.rationale,
        "time_spent_ms": annotation.time_spent_ms,
        "submitted_at": annotation.submitted_at,
    }


class _LabelFieldsSerializer(serializers.Serializer):
    """The five attributes, rationale and time of a label: shared by the annotator's and the lead's views."""

    task_category = serializers.CharField()
    objectivity = serializers.ChoiceField(choices=Objectivity.choices)
    controversiality = serializers.ChoiceField(choices=Controversiality.choices)
    desired_attributes = serializers.ListField(child=serializers.CharField())
    guideline = serializers.CharField()
    rationale = serializers.CharField()
    time_spent_ms = serializers.IntegerField()
    submitted_at = serializers.DateTimeField()


class ShownAnnotationOutputSerializer(_LabelFieldsSerializer):
    id = serializers.IntegerField()
    assignment_id = serializers.IntegerField()
    pair_id = serializers.IntegerField()
    preference = serializers.ChoiceField(choices=SHOWN_CHOICES, help_text="Which side you preferred, as shown.")

    class Meta:
        ref_name = "AnnotatorAnnotation"


class MessageSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=["system", "user", "assistant"])
    content = serializers.CharField()

    class Meta:
        ref_name = "Message"


# --- projects ----------------------------------------------------------------------------------


class ProjectOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    guidelines = serializers.CharField()
    annotators_per_pair = serializers.IntegerField()
    claim_timeout_minutes = serializers.IntegerField()
    taxonomy = serializers.ListField(child=serializers.CharField())
    desired_attributes = serializers.ListField(child=serializers.CharField())
    created_at = serializers.DateTimeField()

    class Meta:
        ref_name = "Project"


def _project_url(project: Project) -> str:
    return reverse("api:project-detail", kwargs={"project_id": project.pk})


class ProjectListApi(BaseApi):
    """GET: the projects you can see (members: theirs; admins: all). POST: create one (admins)."""

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=200)
        description = serializers.CharField(required=False, allow_blank=True, default="")
        guidelines = serializers.CharField(required=False, allow_blank=True, default="")
        annotators_per_pair = serializers.IntegerField(required=False, min_value=1, max_value=15)
        claim_timeout_minutes = serializers.IntegerField(required=False, min_value=1)
        taxonomy = serializers.ListField(child=serializers.CharField(max_length=200), required=False)
        desired_attributes = serializers.ListField(child=serializers.CharField(max_length=200), required=False)

        class Meta:
            ref_name = "ProjectCreate"

    def get_permissions(self) -> list[Any]:
        if self.request.method == "POST":
            return [IsAuthenticated(), IsAdminRole()]
        return super().get_permissions()

    @extend_schema(tags=["projects"], responses={200: ProjectOutputSerializer(many=True)})
    def get(self, request: Request) -> Response:
        projects = project_list_for_user(request.user)
        return Response(ProjectOutputSerializer(projects, many=True).data)

    @extend_schema(
        tags=["projects"],
        request=InputSerializer,
        responses={201: ProjectOutputSerializer, 400: VALIDATION_400, 403: FORBIDDEN_403},
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        project = project_create(created_by=request.user, **serializer.validated_data)
        return Response(
            ProjectOutputSerializer(project).data,
            status=status.HTTP_201_CREATED,
            headers={"Location": request.build_absolute_uri(_project_url(project))},
        )


class ProjectDetailApi(BaseApi):
    """GET: one project (members and admins). PATCH: change it (admins)."""

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=200, required=False)
        description = serializers.CharField(required=False, allow_blank=True)
        guidelines = serializers.CharField(required=False, allow_blank=True)
        annotators_per_pair = serializers.IntegerField(required=False, min_value=1, max_value=15)
        claim_timeout_minutes = serializers.IntegerField(required=False, min_value=1)
        taxonomy = serializers.ListField(child=serializers.CharField(max_length=200), required=False)
        desired_attributes = serializers.ListField(child=serializers.CharField(max_length=200), required=False)

        class Meta:
            ref_name = "ProjectUpdate"

    def get_permissions(self) -> list[Any]:
        if self.request.method == "PATCH":
            return [IsAuthenticated(), IsAdminRole()]
        return super().get_permissions()

    @extend_schema(tags=["projects"], responses={200: ProjectOutputSerializer, 404: NOT_FOUND_404})
    def get(self, request: Request, project_id: int) -> Response:
        project = _get_project_for_user(request.user, project_id)
        return Response(ProjectOutputSerializer(project).data)

    @extend_schema(
        tags=["projects"],
        request=InputSerializer,
        responses={200: ProjectOutputSerializer, 400: VALIDATION_400, 403: FORBIDDEN_403, 404: NOT_FOUND_404},
    )
    def patch(self, request: Request, project_id: int) -> Response:
        project = _get_project_for_user(request.user, project_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        project = project_update(project=project, **serializer.validated_data)
        return Response(ProjectOutputSerializer(project).data)


class ProjectProgressApi(BaseApi):
    """Labelling progress of a project (members and admins)."""

    class OutputSerializer(serializers.Serializer):
        total = serializers.IntegerField(help_text="Pairs in the project.")
        open = serializers.IntegerField(help_text="Pairs still taking claims.")
        full = serializers.IntegerField(help_text="Pairs with every slot claimed, some labels outstanding.")
        complete = serializers.IntegerField(help_text="Pairs with all their labels.")
        labels_needed = serializers.IntegerField()
        labels_given = serializers.IntegerField()
        percent = serializers.FloatField()

        class Meta:
            ref_name = "ProjectProgress"

    @extend_schema(tags=["projects"], responses={200: OutputSerializer, 404: NOT_FOUND_404})
    def get(self, request: Request, project_id: int) -> Response:
        project = _get_project_for_user(request.user, project_id)
        return Response(self.OutputSerializer(project_progress(project)).data)


# --- pairs -------------------------------------------------------------------------------------


class PairCursorPagination(CursorPagination):
    """Keyset pagination by id: stable while pairs are imported, and cheap on deep pages."""

    ordering = "id"
    page_size_query_param = "page_size"
    max_page_size = 1000


class PairListApi(BaseApi):
    """Pairs of a project, by id, a page at a time (leads and admins). Follow ``next`` for more."""

    pagination_class = PairCursorPagination

    class FilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=Pair.Status.choices, required=False)

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        external_id = serializers.CharField()
        batch_id = serializers.IntegerField(allow_null=True)
        status = serializers.ChoiceField(choices=Pair.Status.choices)
        n_claimed = serializers.IntegerField()
        n_submitted = serializers.IntegerField()
        priority = serializers.FloatField()
        source_label = serializers.ChoiceField(choices=Pair.SourceLabel.choices)
        source = serializers.CharField()
        subset = serializers.CharField()
        created_at = serializers.DateTimeField()

        class Meta:
            ref_name = "PairSummary"

    permission_classes = [IsAuthenticated, IsLeadOrAdmin]

    @extend_schema(
        tags=["pairs"],
        parameters=[
            OpenApiParameter("status", enum=Pair.Status.values, description="Only pairs in this state."),
            OpenApiParameter("page_size", int, description="Pairs per page (default 100, at most 1000)."),
        ],
        responses={200: OutputSerializer(many=True), 400: VALIDATION_400, 403: FORBIDDEN_403, 404: NOT_FOUND_404},
    )
    def get(self, request: Request, project_id: int) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        project = _get_project_for_user(request.user, project_id)
        pairs = pair_list(project, status=filters.validated_data.get("status"))
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(pairs, request, view=self)
        return paginator.get_paginated_response(self.OutputSerializer(page, many=True).data)


class ReviewerAnnotationOutputSerializer(_LabelFieldsSerializer):
    id = serializers.IntegerField()
    annotator_id = serializers.IntegerField()
    annotator = serializers.CharField(source="annotator.get_username")
    preference = serializers.ChoiceField(choices=Preference.choices, help_text="Canonical A/B.")
    order_shown = serializers.ChoiceField(choices=Assignment.Order.choices)
    is_retest = serializers.BooleanField(help_text="A double-blind retest label; not one of the pair's N.")
    wall_time_ms = serializers.IntegerField()

    class Meta:
        ref_name = "ReviewerAnnotation"


class AnnotatorAssignmentOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=Assignment.Status.choices)
    claimed_at = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)
    submitted_at = serializers.DateTimeField(allow_null=True)

    class Meta:
        ref_name = "AnnotatorAssignment"


class PairDetailApi(BaseApi):
    """One pair. Leads and admins: canonical A/B with every label. Annotators: only a pair that is
    or was assigned to them, in the order shown to them, with only their own label. Anyone else: 404.
    """

    class ReviewerOutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        project_id = serializers.IntegerField()
        batch_id = serializers.IntegerField(allow_null=True)
        external_id = serializers.CharField()
        status = serializers.ChoiceField(choices=Pair.Status.choices)
        conversation = MessageSerializer(many=True)
        response_a = serializers.CharField()
        response_b = serializers.CharField()
        source_label = serializers.ChoiceField(choices=Pair.SourceLabel.choices)
        source = serializers.CharField()
        subset = serializers.CharField()
        metadata = serializers.DictField()
        priority = serializers.FloatField()
        n_claimed = serializers.IntegerField()
        n_submitted = serializers.IntegerField()
        annotations = ReviewerAnnotationOutputSerializer(many=True)

        class Meta:
            ref_name = "ReviewerPair"

    class AnnotatorOutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        project_id = serializers.IntegerField()
        assignment = AnnotatorAssignmentOutputSerializer()
        conversation = MessageSerializer(many=True)
        left = serializers.CharField()
        right = serializers.CharField()
        annotation = ShownAnnotationOutputSerializer(allow_null=True)

        class Meta:
            ref_name = "AnnotatorPair"

    @extend_schema(
        tags=["pairs"],
        responses={
            200: PolymorphicProxySerializer(
                component_name="PairDetail",
                serializers=[ReviewerOutputSerializer, AnnotatorOutputSerializer],
                resource_type_field_name=None,
            ),
            404: NOT_FOUND_404,
        },
    )
    def get(self, request: Request, pair_id: int) -> Response:
        user = request.user
        pair = pair_get_for_user(user, pair_id)
        if pair is not None and pair_labels_visible_to(user, pair):
            # The selector's queryset (ordered, annotators joined) fills pair.annotations for the serializer.
            prefetch_related_objects([pair], Prefetch("annotations", queryset=annotation_list_for_pair(pair)))
            return Response(self.ReviewerOutputSerializer(pair).data)
        assignment = assignment_get_for_pair(pair, user) if pair is not None and is_annotator(user) else None
        if pair is None or assignment is None:
            raise exceptions.NotFound("No such pair.")
        left, right = responses_in_order(pair.response_a, pair.response_b, assignment.order_shown)
        annotation = annotation_get_for_annotator(pair, user)
        payload = {
            "id": pair.pk,
            "project_id": pair.project_id,
            "assignment": assignment,
            "conversation": pair.conversation,
            "left": left,
            "right": right,
            "annotation": _shown_annotation(annotation) if annotation is not None else None,
        }
        return Response(self.AnnotatorOutputSerializer(payload).data)


# --- import ------------------------------------------------------------------------------------


def _import_status_url(request: Request, batch: ImportBatch) -> str:
    return request.build_absolute_uri(reverse("api:import-detail", kwargs={"batch_id": batch.pk}))


class ProjectImportApi(BaseApi):
    """Upload a JSON Lines file of pairs (admins). The import runs on a worker; poll ``status_url``."""

    parser_classes = [MultiPartParser, FormParser]
    permission_classes = [IsAuthenticated, IsAdminRole]

    class InputSerializer(serializers.Serializer):
        file = serializers.FileField(help_text="JSON Lines: prompt plus chosen/rejected or response_a/response_b.")

        class Meta:
            ref_name = "ImportUpload"

        def validate_file(self, value: Any) -> Any:
            limit = int(settings.MAX_IMPORT_UPLOAD_BYTES)
            if value.size > limit:
                raise serializers.ValidationError(f"the file is larger than {limit} bytes")
            return value

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        status = serializers.ChoiceField(choices=ImportBatch.Status.choices)
        status_url = serializers.URLField()

        class Meta:
            ref_name = "ImportQueued"

    @extend_schema(
        tags=["imports"],
        request={"multipart/form-data": InputSerializer},
        responses={
            202: OpenApiResponse(
                response=OutputSerializer,
                description=(
                    "Queued. Poll GET `status_url` (every few seconds) until `status` is `done` or `failed`; "
                    "a failed import lists each bad line's (line, field, message) and imports nothing."
                ),
            ),
            400: VALIDATION_400,
            403: FORBIDDEN_403,
            404: NOT_FOUND_404,
        },
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = _get_project_for_user(request.user, project_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        upload = serializer.validated_data["file"]
        batch = import_batch_create(project=project, upload=upload, filename=upload.name, created_by=request.user)
        url = _import_status_url(request, batch)
        payload = {"id": batch.pk, "status": batch.status, "status_url": url}
        return Response(self.OutputSerializer(payload).data, status=status.HTTP_202_ACCEPTED, headers={"Location": url})


class ImportLineErrorOutputSerializer(serializers.Serializer):
    line = serializers.IntegerField(help_text="1-based line number; 0 for the whole file.")
    field = serializers.CharField(help_text='The offending field, e.g. "chosen" or "prompt[0].role"; "" for the line.')
    message = serializers.CharField()

    class Meta:
        ref_name = "ImportLineError"


class ImportBatchDetailApi(BaseApi):
    """Status of an import (admins): counts when done, each bad line's errors when failed."""

    permission_classes = [IsAuthenticated, IsAdminRole]

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        project_id = serializers.IntegerField()
        filename = serializers.CharField()
        status = serializers.ChoiceField(choices=ImportBatch.Status.choices)
        is_finished = serializers.BooleanField()
        n_lines = serializers.IntegerField()
        n_imported = serializers.IntegerField()
        n_duplicates = serializers.IntegerField()
        errors = ImportLineErrorOutputSerializer(many=True)
        created_at = serializers.DateTimeField()
        started_at = serializers.DateTimeField(allow_null=True)
        finished_at = serializers.DateTimeField(allow_null=True)

        class Meta:
            ref_name = "ImportBatch"

    @extend_schema(tags=["imports"], responses={200: OutputSerializer, 403: FORBIDDEN_403, 404: NOT_FOUND_404})
    def get(self, request: Request, batch_id: int) -> Response:
        batch = import_batch_get_for_user(request.user, batch_id)
        if batch is None:
            raise exceptions.NotFound("No such import.")
        return Response(self.OutputSerializer(batch).data)


# --- annotator queue ---------------------------------------------------------------------------


class ProjectNextApi(BaseApi):
    """Your open claim in this project, or a newly claimed pair (annotators who are members).

    Responses come as ``left``/``right`` in the order shown to you; answer in those terms.
    """

    permission_classes = [IsAuthenticated, IsAnnotator]

    class OutputSerializer(serializers.Serializer):
        assignment_id = serializers.IntegerField()
        pair_id = serializers.IntegerField()
        project_id = serializers.IntegerField()
        conversation = MessageSerializer(many=True)
        left = serializers.CharField()
        right = serializers.CharField()
        expires_at = serializers.DateTimeField()
        taxonomy = serializers.ListField(child=serializers.CharField(), help_text="Allowed task_category values.")
        desired_attributes = serializers.ListField(child=serializers.CharField())
        guidelines = serializers.CharField()

        class Meta:
            ref_name = "NextPair"

    @extend_schema(
        tags=["queue"],
        request=None,
        responses={
            200: OutputSerializer,
            204: OpenApiResponse(description="Nothing left for you in this project."),
            403: FORBIDDEN_403,
            404: NOT_FOUND_404,
            409: _error("Could not claim a pair under contention; retry."),
        },
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = _get_project_for_member(request.user, project_id)
        assignment = assignment_claim_next(project=project, annotator=request.user)
        if assignment is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        pair = assignment.pair
        left, right = responses_in_order(pair.response_a, pair.response_b, assignment.order_shown)
        payload = {
            "assignment_id": assignment.pk,
            "pair_id": pair.pk,
            "project_id": project.pk,
            "conversation": pair.conversation,
            "left": left,
            "right": right,
            "expires_at": assignment.expires_at,
            "taxonomy": project.taxonomy,
            "desired_attributes": project.desired_attributes,
            "guidelines": project.guidelines,
        }
        return Response(self.OutputSerializer(payload).data)


class AssignmentSubmitApi(BaseApi):
    """Submit your label for one of your assignments, with the preference as the side shown."""

    permission_classes = [IsAuthenticated, IsAnnotator]

    class InputSerializer(serializers.Serializer):
        preference = serializers.ChoiceField(choices=SHOWN_CHOICES)
        task_category = serializers.CharField(max_length=200, help_text="One of the project's taxonomy.")
        objectivity = serializers.ChoiceField(choices=Objectivity.choices)
        controversiality = serializers.ChoiceField(choices=Controversiality.choices)
        desired_attributes = serializers.ListField(
            child=serializers.CharField(max_length=200), required=False, default=list
        )
        guideline = serializers.CharField(required=False, allow_blank=True, default="")
        rationale = serializers.CharField()
        time_spent_ms = serializers.IntegerField(min_value=0, max_value=2**31 - 1)

        class Meta:
            ref_name = "AnnotationSubmit"

    @extend_schema(
        tags=["queue"],
        request=InputSerializer,
        responses={
            201: ShownAnnotationOutputSerializer,
            400: VALIDATION_400,
            403: FORBIDDEN_403,
            404: NOT_FOUND_404,
            409: _error("Already labelled, or the claim expired and the slot went to someone else."),
        },
    )
    def post(self, request: Request, assignment_id: int) -> Response:
        assignment = _get_assignment_for_annotator(request.user, assignment_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        values = dict(serializer.validated_data)
        # The answer is left/right as shown; the service translates it to A/B with the locked assignment.
        annotation = annotation_submit(
            assignment_id=assignment.pk, annotator=request.user, data=AnnotationInput(**values), shown=True
        )
        return Response(
            ShownAnnotationOutputSerializer(_shown_annotation(annotation)).data, status=status.HTTP_201_CREATED
        )


class AssignmentReleaseApi(BaseApi):
    """Skip your claimed pair: its slot goes back to the pool."""

    permission_classes = [IsAuthenticated, IsAnnotator]

    @extend_schema(
        tags=["queue"],
        request=None,
        responses={
            204: OpenApiResponse(description="Released."),
            403: FORBIDDEN_403,
            404: NOT_FOUND_404,
            409: _error("The assignment is not an open claim (already submitted or expired)."),
        },
    )
    def post(self, request: Request, assignment_id: int) -> Response:
        assignment = _get_assignment_for_annotator(request.user, assignment_id)
        assignment_release(assignment_id=assignment.pk, annotator=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
