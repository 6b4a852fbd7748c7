"""JSON API of the scoring servers (admins only): list and create, ping, attach one to a model version.

Same house style as ``rewardmodel/apis.py``. The API key is write-only: accepted on create, never returned
(``has_key`` says whether one is configured).
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from config.apitools import FORBIDDEN_403, VALIDATION_400
from rewardmodel.apis import NOT_FOUND_404, AdminApi, ModelVersionOutputSerializer, _get_or_404
from rewardmodel.models import ModelVersion, ScoringServer
from rewardmodel.servers import model_version_attach_server, scoring_server_ping, scoring_server_save


class ScoringServerOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=ScoringServer.Kind.choices)
    base_urls = serializers.ListField(child=serializers.CharField(), source="url_list")
    served_model = serializers.CharField()
    has_key = serializers.BooleanField(help_text="Whether a key is configured (the key itself is never returned).")
    api_key_env = serializers.CharField()
    batch_size = serializers.IntegerField()
    concurrency = serializers.IntegerField()
    timeout_s = serializers.FloatField()
    max_retries = serializers.IntegerField()
    check_saturation = serializers.BooleanField()
    model_version_ids = serializers.SerializerMethodField()

    class Meta:
        ref_name = "ScoringServer"

    def get_model_version_ids(self, server: ScoringServer) -> list[int]:
        return sorted(v.pk for v in server.model_versions.all())


class ScoringServerListApi(AdminApi):
    """Scoring servers (GET), or configure a new one (POST)."""

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=100)
        kind = serializers.ChoiceField(choices=ScoringServer.Kind.choices)
        base_urls = serializers.ListField(child=serializers.CharField(max_length=300), min_length=1)
        served_model = serializers.CharField(max_length=300)
        api_key = serializers.CharField(required=False, allow_blank=True, write_only=True, max_length=500)
        api_key_env = serializers.CharField(required=False, allow_blank=True, max_length=100)
        api_key_file = serializers.CharField(required=False, allow_blank=True, max_length=300)
        batch_size = serializers.IntegerField(required=False, min_value=1)
        concurrency = serializers.IntegerField(required=False, min_value=1)
        timeout_s = serializers.FloatField(required=False, min_value=0.1)
        max_retries = serializers.IntegerField(required=False, min_value=0)
        check_saturation = serializers.BooleanField(required=False)

        class Meta:
            ref_name = "ScoringServerCreate"

    @extend_schema(
        tags=["reward models"], responses={200: ScoringServerOutputSerializer(many=True), 403: FORBIDDEN_403}
    )
    def get(self, request: Request) -> Response:
        servers = ScoringServer.objects.prefetch_related("model_versions")
        return Response(ScoringServerOutputSerializer(servers, many=True).data)

    @extend_schema(
        tags=["reward models"],
        request=InputSerializer,
        responses={201: ScoringServerOutputSerializer, 400: VALIDATION_400, 403: FORBIDDEN_403},
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        api_key = data.pop("api_key", "")
        data["base_urls"] = "\n".join(data["base_urls"])
        server = scoring_server_save(server=ScoringServer(**data), api_key=api_key)
        return Response(ScoringServerOutputSerializer(server).data, status=status.HTTP_201_CREATED)


class ScoringServerPingApi(AdminApi):
    """Score one known pair on each of the server's base URLs; raw scores or the error, per URL."""

    @extend_schema(tags=["reward models"], request=None, responses={200: dict, 403: FORBIDDEN_403, 404: NOT_FOUND_404})
    def post(self, request: Request, server_id: int) -> Response:
        server = _get_or_404(ScoringServer.objects.all(), server_id, "scoring server")
        return Response(scoring_server_ping(server=server))


class ModelVersionScoringServerApi(AdminApi):
    """Score a model version on a scoring server from now on (``{"server": id}``), or in-process (``null``)."""

    class InputSerializer(serializers.Serializer):
        server = serializers.PrimaryKeyRelatedField(queryset=ScoringServer.objects.all(), allow_null=True)

        class Meta:
            ref_name = "ModelVersionScoringServer"

    @extend_schema(
        tags=["reward models"],
        request=InputSerializer,
        responses={200: ModelVersionOutputSerializer, 400: VALIDATION_400, 403: FORBIDDEN_403, 404: NOT_FOUND_404},
    )
    def post(self, request: Request, version_id: int) -> Response:
        version = _get_or_404(ModelVersion.objects.all(), version_id, "model version")
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        version = model_version_attach_server(version=version, server=serializer.validated_data["server"])
        return Response(ModelVersionOutputSerializer(version).data)
