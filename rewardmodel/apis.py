"""JSON API of the reward-model app: data files, training jobs, model versions, evaluations (admins only).

Same house style as ``annotation/apis.py``: one APIView per operation, nested Input/Output
serializers that do I/O only, one service or selector call per view. Like the Models pages this
app knows nothing of annotation roles: every endpoint is for staff users, which is what the admin
role grants (``annotation.services`` keeps ``is_staff`` in step with the admin role), so leads and
annotators get 403.

Training on a project's curated data (a dataset version, or its D_gold) starts from curation's
API, which registers the version's file and calls ``rewardmodel.services``; here a job trains on
an uploaded file or an already registered data file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from config.apitools import FORBIDDEN_403, VALIDATION_400, ServiceApi, bad_request_from, conflict_from, error_response
from rewardmodel.models import DatasetFile, EvaluationRun, ModelVersion, TrainingJob
from rewardmodel.presets import ATTENTION_CHOICES
from rewardmodel.services import (
    dataset_file_register_upload,
    evaluation_create,
    model_version_promote,
    training_config_validate,
    training_job_cancel,
    training_job_create,
    training_job_resume,
)

NOT_FOUND_404 = error_response("No such object.")
LOG_TAIL_LINES = 40


class IsStaff(BasePermission):
    """Admins: staff users (the admin role sets ``is_staff``) and superusers, as on the Models pages."""

    message = "Only admins may use the reward-model API."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and (user.is_staff or user.is_superuser))


class AdminApi(ServiceApi):
    permission_classes = [IsAuthenticated, IsStaff]


class NewestFirstPagination(CursorPagination):
    """Keyset pagination, newest first: stable while new rows arrive."""

    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


def _get_or_404(queryset: Any, pk: int, what: str) -> Any:
    found = queryset.filter(pk=pk).first()
    if found is None:
        raise exceptions.NotFound(f"No such {what}.")
    return found


# --- serializers shared by several endpoints ----------------------------------------------------


class DatasetFileOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    sha256 = serializers.CharField()
    n_records = serializers.IntegerField()
    scope = serializers.CharField()
    ref = serializers.CharField(help_text="Where it came from, e.g. round:3 or dataset-version:12.")
    created_at = serializers.DateTimeField()

    class Meta:
        ref_name = "DatasetFile"


class CurvePointOutputSerializer(serializers.Serializer):
    step = serializers.IntegerField()
    loss = serializers.FloatField(required=False)
    accuracy = serializers.FloatField(required=False)
    mean_margin = serializers.FloatField(required=False)
    lr = serializers.FloatField(required=False)
    tokens_per_second = serializers.FloatField(required=False)
    eval_accuracy = serializers.FloatField(required=False, help_text="Accuracy on the evaluation (D_gold) file.")
    eval_margin = serializers.FloatField(required=False)

    class Meta:
        ref_name = "CurvePoint"


class TrainingJobOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    scope = serializers.CharField()
    status = serializers.ChoiceField(choices=TrainingJob.Status.choices)
    is_finished = serializers.BooleanField()
    base_model = serializers.CharField()
    train_data = DatasetFileOutputSerializer()
    eval_data = DatasetFileOutputSerializer(allow_null=True)
    config = serializers.DictField(help_text="The RewardTrainingConfig the job runs with.")
    progress = serializers.FloatField(help_text="0 to 1.")
    step = serializers.IntegerField()
    total_steps = serializers.IntegerField()
    curve = CurvePointOutputSerializer(many=True, help_text="One point per logged step, oldest first.")
    error = serializers.CharField()
    device = serializers.CharField()
    processes = serializers.IntegerField(help_text="Training processes (one per GPU).")
    accelerator = serializers.ChoiceField(choices=TrainingJob.Accelerator.choices)
    cancel_requested = serializers.BooleanField()
    resumable = serializers.BooleanField()
    attempts = serializers.IntegerField()
    model_version_id = serializers.IntegerField(allow_null=True, help_text="The registered model, once succeeded.")
    log_tail = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)

    class Meta:
        ref_name = "TrainingJob"

    def get_log_tail(self, job: TrainingJob) -> str:
        """The last lines of the job's log."""
        return "\n".join(job.log.splitlines()[-LOG_TAIL_LINES:])


def job_status_url(request: Request, job: TrainingJob) -> str:
    return request.build_absolute_uri(reverse("rewardmodel_api:training-job-detail", kwargs={"job_id": job.pk}))


def _jobs() -> Any:
    return TrainingJob.objects.select_related("train_data", "eval_data")


# --- data files ----------------------------------------------------------------------------------


class DatasetFileListApi(AdminApi):
    """Registered data files (uploads, dataset versions' files), newest first. POST: upload one."""

    pagination_class = NewestFirstPagination

    class InputSerializer(serializers.Serializer):
        file = serializers.FileField(help_text="JSON Lines: prompt, chosen, rejected (optional subset).")
        scope = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")

        class Meta:
            ref_name = "DatasetFileUpload"

    @extend_schema(tags=["reward models"], responses={200: DatasetFileOutputSerializer(many=True), 403: FORBIDDEN_403})
    def get(self, request: Request) -> Response:
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(DatasetFile.objects.all(), request, view=self)
        return paginator.get_paginated_response(DatasetFileOutputSerializer(page, many=True).data)

    @extend_schema(
        tags=["reward models"],
        request={"multipart/form-data": InputSerializer},
        responses={201: DatasetFileOutputSerializer, 400: VALIDATION_400, 403: FORBIDDEN_403},
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            dataset = dataset_file_register_upload(upload=data["file"], scope=data["scope"], created_by=request.user)
        except DjangoValidationError as exc:
            raise bad_request_from(exc, "file") from None
        return Response(DatasetFileOutputSerializer(dataset).data, status=status.HTTP_201_CREATED)


# --- training jobs -------------------------------------------------------------------------------


class TrainingConfigInputSerializer(serializers.Serializer):
    """Training settings; anything left out takes RewardTrainingConfig's default."""

    learning_rate = serializers.FloatField(required=False, min_value=0)
    lr_scheduler = serializers.ChoiceField(choices=["constant", "linear"], required=False)
    warmup_ratio = serializers.FloatField(required=False, min_value=0, max_value=1)
    num_epochs = serializers.IntegerField(required=False, min_value=1)
    max_steps = serializers.IntegerField(required=False, min_value=0, help_text="> 0 overrides epochs.")
    batch_size = serializers.IntegerField(required=False, min_value=1)
    gradient_accumulation_steps = serializers.IntegerField(required=False, min_value=1)
    max_length = serializers.IntegerField(required=False, min_value=16)
    eval_every = serializers.IntegerField(required=False, min_value=0)
    save_every = serializers.IntegerField(required=False, min_value=0)
    bf16 = serializers.BooleanField(required=False, help_text="On CUDA only.")
    gradient_checkpointing = serializers.BooleanField(required=False)
    parallelism = serializers.ChoiceField(
        choices=["ddp", "fsdp"], required=False, help_text="fsdp shards the model over the processes (FSDP2)."
    )
    padding_free = serializers.BooleanField(
        required=False,
        help_text="Pack each micro-batch's sequences into one row with no padding (decoder models only; "
        "on GPU with attn_implementation flash_attention_2).",
    )
    attn_implementation = serializers.ChoiceField(
        choices=list(ATTENTION_CHOICES),
        required=False,
        help_text="Attention kernels; left out = the transformers default (sdpa).",
    )

    CONFIG_FIELDS = (
        "learning_rate",
        "lr_scheduler",
        "warmup_ratio",
        "num_epochs",
        "max_steps",
        "batch_size",
        "gradient_accumulation_steps",
        "max_length",
        "eval_every",
        "save_every",
        "bf16",
        "gradient_checkpointing",
        "parallelism",
        "padding_free",
        "attn_implementation",
    )

    class Meta:
        ref_name = "TrainingConfig"

    @classmethod
    def config_of(cls, data: dict[str, Any]) -> dict[str, Any]:
        return {name: data[name] for name in cls.CONFIG_FIELDS if name in data}


class TrainingJobListApi(AdminApi):
    """GET: training jobs, newest first. POST: launch one on an uploaded file or a registered data file.

    The job runs on the ``gpu`` queue; poll ``status_url``. To train on a project's dataset version
    or its D_gold, use ``POST /api/projects/{id}/dataset-versions/{version_id}/train/`` instead.
    """

    pagination_class = NewestFirstPagination

    class InputSerializer(TrainingConfigInputSerializer):
        name = serializers.CharField(max_length=200, required=False, default="reward-model")
        scope = serializers.CharField(
            max_length=100, required=False, allow_blank=True, default="", help_text="e.g. project:1"
        )
        base_model = serializers.CharField(
            max_length=1000, required=False, default="default", help_text="One of the configured base models."
        )
        train_file = serializers.FileField(required=False, help_text="JSON Lines: prompt, chosen, rejected.")
        train_data_id = serializers.IntegerField(required=False, help_text="…or a registered data file's id.")
        eval_file = serializers.FileField(required=False, help_text="D_gold: picks the best checkpoint.")
        eval_data_id = serializers.IntegerField(required=False)
        processes = serializers.IntegerField(
            required=False,
            default=1,
            min_value=1,
            max_value=TrainingJob.MAX_PROCESSES,
            help_text="Training processes on the worker, one per GPU; a worker with fewer GPUs refuses the job.",
        )
        accelerator = serializers.ChoiceField(
            choices=TrainingJob.Accelerator.choices, required=False, default=TrainingJob.Accelerator.AUTO
        )

        class Meta:
            ref_name = "TrainingJobLaunch"

        def validate(self, data: dict[str, Any]) -> dict[str, Any]:
            for part in ("train", "eval"):
                if data.get(f"{part}_file") is not None and data.get(f"{part}_data_id") is not None:
                    raise serializers.ValidationError(
                        {f"{part}_data_id": f"give {part}_file or {part}_data_id, not both"}
                    )
            if data.get("train_file") is None and data.get("train_data_id") is None:
                raise serializers.ValidationError({"train_file": "upload a training file or give train_data_id"})
            try:  # before any upload is registered: a setting the trainer would refuse changes nothing
                training_config_validate(base_model=data["base_model"], config=self.config_of(data))
            except DjangoValidationError as exc:
                raise bad_request_from(exc) from None
            return data

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        status = serializers.ChoiceField(choices=TrainingJob.Status.choices)
        status_url = serializers.URLField()

        class Meta:
            ref_name = "TrainingJobQueued"

    @extend_schema(tags=["reward models"], responses={200: TrainingJobOutputSerializer(many=True), 403: FORBIDDEN_403})
    def get(self, request: Request) -> Response:
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(_jobs(), request, view=self)
        return paginator.get_paginated_response(TrainingJobOutputSerializer(page, many=True).data)

    @staticmethod
    def _data_file(data: dict[str, Any], part: str, user: Any) -> DatasetFile | None:
        if data.get(f"{part}_data_id") is not None:
            found = DatasetFile.objects.filter(pk=data[f"{part}_data_id"]).first()
            if found is None:
                raise exceptions.ValidationError({f"{part}_data_id": ["no data file with this id"]})
            return found
        if data.get(f"{part}_file") is not None:
            try:
                return dataset_file_register_upload(upload=data[f"{part}_file"], scope=data["scope"], created_by=user)
            except DjangoValidationError as exc:
                raise bad_request_from(exc, f"{part}_file") from None
        return None

    @extend_schema(
        tags=["reward models"],
        request={"multipart/form-data": InputSerializer},
        responses={
            202: OpenApiResponse(response=OutputSerializer, description="Queued; poll `status_url`."),
            400: VALIDATION_400,
            403: FORBIDDEN_403,
        },
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        train = self._data_file(data, "train", request.user)
        assert train is not None  # validate() requires one
        job = training_job_create(
            name=data["name"],
            scope=data["scope"],
            train_data=train,
            eval_data=self._data_file(data, "eval", request.user),
            base_model=data["base_model"],
            config=TrainingConfigInputSerializer.config_of(data),
            created_by=request.user,
            processes=data["processes"],
            accelerator=data["accelerator"],
        )
        url = job_status_url(request, job)
        payload = {"id": job.pk, "status": job.status, "status_url": url}
        return Response(self.OutputSerializer(payload).data, status=status.HTTP_202_ACCEPTED, headers={"Location": url})


class TrainingJobDetailApi(AdminApi):
    """A training job's status, progress, loss/accuracy curve, log tail and, once done, its model version."""

    @extend_schema(
        tags=["reward models"], responses={200: TrainingJobOutputSerializer, 403: FORBIDDEN_403, 404: NOT_FOUND_404}
    )
    def get(self, request: Request, job_id: int) -> Response:
        job = _get_or_404(_jobs(), job_id, "training job")
        return Response(TrainingJobOutputSerializer(job).data)


def _job_action(job_id: int, action: Callable[..., Any]) -> Response:
    """Run a state change (cancel, resume) on a job; a change its state forbids is a 409."""
    job = _get_or_404(TrainingJob.objects.all(), job_id, "training job")
    try:
        action(job=job)
    except DjangoValidationError as exc:
        raise conflict_from(exc) from None
    return Response(TrainingJobOutputSerializer(_jobs().get(pk=job.pk)).data)


class TrainingJobCancelApi(AdminApi):
    """Cancel a job: a queued one at once; a running one stops at its next logged step, keeping a checkpoint."""

    @extend_schema(
        tags=["reward models"],
        request=None,
        responses={
            200: TrainingJobOutputSerializer,
            403: FORBIDDEN_403,
            404: NOT_FOUND_404,
            409: error_response("The job has already finished."),
        },
    )
    def post(self, request: Request, job_id: int) -> Response:
        return _job_action(job_id, training_job_cancel)


class TrainingJobResumeApi(AdminApi):
    """Requeue a failed or cancelled job; it continues from its last checkpoint."""

    @extend_schema(
        tags=["reward models"],
        request=None,
        responses={
            200: TrainingJobOutputSerializer,
            403: FORBIDDEN_403,
            404: NOT_FOUND_404,
            409: error_response("Only failed or cancelled jobs can be resumed."),
        },
    )
    def post(self, request: Request, job_id: int) -> Response:
        return _job_action(job_id, training_job_resume)


# --- model versions ------------------------------------------------------------------------------


class ModelVersionOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    scope = serializers.CharField()
    base_model = serializers.CharField()
    data_ref = serializers.CharField(help_text="The data it was trained on.")
    data_sha256 = serializers.CharField()
    config = serializers.DictField()
    metrics = serializers.DictField(help_text="Training metrics: eval, best_eval_accuracy, best_step, ...")
    eval_accuracy = serializers.FloatField(allow_null=True, help_text="D_gold accuracy of the checkpoint kept.")
    is_gold = serializers.BooleanField()
    is_current_best = serializers.BooleanField()
    scoring_server_id = serializers.IntegerField(
        allow_null=True, help_text="The scoring server it is scored on; null: in-process on the gpu worker."
    )
    created_at = serializers.DateTimeField()

    class Meta:
        ref_name = "ModelVersion"


class ModelVersionListApi(AdminApi):
    """Registered model versions, newest first."""

    pagination_class = NewestFirstPagination

    @extend_schema(tags=["reward models"], responses={200: ModelVersionOutputSerializer(many=True), 403: FORBIDDEN_403})
    def get(self, request: Request) -> Response:
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(ModelVersion.objects.all(), request, view=self)
        return paginator.get_paginated_response(ModelVersionOutputSerializer(page, many=True).data)


class ModelVersionDetailApi(AdminApi):
    """One model version."""

    @extend_schema(
        tags=["reward models"], responses={200: ModelVersionOutputSerializer, 403: FORBIDDEN_403, 404: NOT_FOUND_404}
    )
    def get(self, request: Request, version_id: int) -> Response:
        version = _get_or_404(ModelVersion.objects.all(), version_id, "model version")
        return Response(ModelVersionOutputSerializer(version).data)


class ModelVersionPromoteApi(AdminApi):
    """Make a version the gold or current-best model of its scope (the previous holder loses the role)."""

    class InputSerializer(serializers.Serializer):
        role = serializers.ChoiceField(choices=[ModelVersion.Role.GOLD.value, ModelVersion.Role.CURRENT_BEST.value])

        class Meta:
            ref_name = "ModelVersionPromote"

    @extend_schema(
        tags=["reward models"],
        request=InputSerializer,
        responses={200: ModelVersionOutputSerializer, 400: VALIDATION_400, 403: FORBIDDEN_403, 404: NOT_FOUND_404},
    )
    def post(self, request: Request, version_id: int) -> Response:
        version = _get_or_404(ModelVersion.objects.all(), version_id, "model version")
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        version = model_version_promote(version=version, role=serializer.validated_data["role"])
        return Response(ModelVersionOutputSerializer(version).data)


# --- evaluations ---------------------------------------------------------------------------------


class EvaluationOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    model_version_id = serializers.IntegerField()
    data = DatasetFileOutputSerializer()
    status = serializers.ChoiceField(choices=EvaluationRun.Status.choices)
    metrics = serializers.DictField(
        help_text="When done: accuracy, mean_margin, n, per_subset {subset: {accuracy, n, ...}}, best-of-N figures."
    )
    error = serializers.CharField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)

    class Meta:
        ref_name = "Evaluation"


class EvaluationCreateApi(AdminApi):
    """GET: a model version's evaluations, newest first. POST: evaluate it on an uploaded file or a data file.

    The file is RewardBench-format JSON Lines (prompt, chosen, rejected, subset). The run goes to the
    ``gpu`` queue; poll ``GET /api/evaluations/{id}/``.
    """

    pagination_class = NewestFirstPagination

    class InputSerializer(serializers.Serializer):
        file = serializers.FileField(required=False, help_text="RewardBench format: prompt, chosen, rejected, subset.")
        data_id = serializers.IntegerField(required=False, help_text="…or a registered data file's id.")

        class Meta:
            ref_name = "EvaluationLaunch"

        def validate(self, data: dict[str, Any]) -> dict[str, Any]:
            if (data.get("file") is None) == (data.get("data_id") is None):
                raise serializers.ValidationError({"file": "upload a file or give data_id (one of them)"})
            return data

    @extend_schema(
        tags=["reward models"],
        responses={200: EvaluationOutputSerializer(many=True), 403: FORBIDDEN_403, 404: NOT_FOUND_404},
    )
    def get(self, request: Request, version_id: int) -> Response:
        version = _get_or_404(ModelVersion.objects.all(), version_id, "model version")
        paginator = self.pagination_class()
        runs = EvaluationRun.objects.filter(model_version=version).select_related("data")
        page = paginator.paginate_queryset(runs, request, view=self)
        return paginator.get_paginated_response(EvaluationOutputSerializer(page, many=True).data)

    @extend_schema(
        tags=["reward models"],
        request={"multipart/form-data": InputSerializer},
        responses={
            202: OpenApiResponse(response=EvaluationOutputSerializer, description="Queued; poll its detail URL."),
            400: VALIDATION_400,
            403: FORBIDDEN_403,
            404: NOT_FOUND_404,
        },
    )
    def post(self, request: Request, version_id: int) -> Response:
        version = _get_or_404(ModelVersion.objects.all(), version_id, "model version")
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if data.get("data_id") is not None:
            dataset = DatasetFile.objects.filter(pk=data["data_id"]).first()
            if dataset is None:
                raise exceptions.ValidationError({"data_id": ["no data file with this id"]})
        else:
            try:
                dataset = dataset_file_register_upload(upload=data["file"], created_by=request.user)
            except DjangoValidationError as exc:
                raise bad_request_from(exc, "file") from None
        run = evaluation_create(version=version, data=dataset, created_by=request.user)
        url = request.build_absolute_uri(reverse("rewardmodel_api:evaluation-detail", kwargs={"run_id": run.pk}))
        return Response(
            EvaluationOutputSerializer(run).data, status=status.HTTP_202_ACCEPTED, headers={"Location": url}
        )


class EvaluationDetailApi(AdminApi):
    """An evaluation's status and, when done, its metrics overall and per subset."""

    @extend_schema(
        tags=["reward models"], responses={200: EvaluationOutputSerializer, 403: FORBIDDEN_403, 404: NOT_FOUND_404}
    )
    def get(self, request: Request, run_id: int) -> Response:
        run = _get_or_404(EvaluationRun.objects.select_related("data"), run_id, "evaluation")
        return Response(EvaluationOutputSerializer(run).data)
