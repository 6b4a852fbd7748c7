"""The export endpoint, ``GET /api/projects/<id>/export/`` (leads and admins): same path as ever, code in curation."""

from __future__ import annotations

from typing import Any

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request

from annotation.models import Project
from annotation.permissions import IsLeadOrAdmin
from annotation.selectors import project_get_for_user
from config.apitools import FORBIDDEN_403, VALIDATION_400, ServiceApi, error_response
from curation.export import DEFAULT_SELECTION, EXPORT_FORMATS, SELECTIONS, export_lines, export_validate


class _IgnoreFormatParamNegotiation(DefaultContentNegotiation):
    """Here ``?format=`` names the export format; DRF would read it as a renderer (URL_FORMAT_OVERRIDE)."""

    def select_renderer(self, request: Request, renderers: Any, format_suffix: str | None = None) -> tuple[Any, str]:
        renderer = renderers[0]
        return renderer, renderer.media_type


def _get_project(user: Any, project_id: int) -> Project:
    project = project_get_for_user(user, project_id)
    if project is None:
        raise exceptions.NotFound("No such project.")
    return project


class ProjectExportApi(ServiceApi):
    """A project's curated pairs as JSON Lines (TRL's RewardTrainer loads verified exports as is).

    Verified pairs (D_gold) with their final label by default; ``selection`` asks for all complete
    pairs (unverified ones with their raw majority, ``verified: false``), disputed or discarded ones.
    """

    permission_classes = [IsAuthenticated, IsLeadOrAdmin]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = _IgnoreFormatParamNegotiation

    class FilterSerializer(serializers.Serializer):
        format = serializers.ChoiceField(choices=EXPORT_FORMATS, required=False, default=EXPORT_FORMATS[0])
        selection = serializers.ChoiceField(choices=list(SELECTIONS), required=False, default=DEFAULT_SELECTION)
        labels = serializers.BooleanField(required=False, allow_null=True, default=None)
        evidence = serializers.BooleanField(required=False, default=False)

    @extend_schema(
        tags=["export"],
        parameters=[
            OpenApiParameter(
                "format",
                enum=list(EXPORT_FORMATS),
                default=EXPORT_FORMATS[0],
                description="`conversational`: prompt/chosen/rejected as message lists (TRL); `standard`: strings "
                "(TRL); `messages`: prompt as messages, responses as strings (the reward-model app's format).",
            ),
            OpenApiParameter(
                "selection",
                enum=list(SELECTIONS),
                default=DEFAULT_SELECTION,
                description="; ".join(f"`{k}`: {v}" for k, v in SELECTIONS.items()),
            ),
            OpenApiParameter(
                "labels",
                OpenApiTypes.BOOL,
                description="Add every annotator's label (default: on for disputed/discarded, off otherwise).",
            ),
            OpenApiParameter("evidence", OpenApiTypes.BOOL, default=False, description="Add the tool evidence."),
        ],
        responses={
            (200, "application/x-ndjson"): OpenApiResponse(
                response=OpenApiTypes.STR,
                description="One JSON object per line: prompt, chosen, rejected, verified, state, label, strength, "
                "via, pool, dataset_version, majority, votes, attributes (labels and evidence on request).",
            ),
            400: VALIDATION_400,
            403: FORBIDDEN_403,
            404: error_response("No such project, or not one you may reach."),
        },
    )
    def get(self, request: Request, project_id: int) -> StreamingHttpResponse:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        project = _get_project(request.user, project_id)
        data = filters.validated_data
        fmt, selection = data["format"], data["selection"]
        export_validate(fmt=fmt, selection=selection)
        lines = export_lines(
            project, fmt=fmt, selection=selection, include_labels=data["labels"], include_evidence=data["evidence"]
        )
        response = StreamingHttpResponse(lines, content_type="application/x-ndjson")
        response["Content-Disposition"] = f'attachment; filename="project-{project.pk}-{selection}-{fmt}.jsonl"'
        return response
