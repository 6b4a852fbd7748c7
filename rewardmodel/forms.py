from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from config.formtools import add_service_errors
from rewardmodel.models import DatasetFile, ModelVersion, TrainingJob
from rewardmodel.presets import ATTENTION_CHOICES, CUSTOM, PRESET_LABELS, PRESETS, preset_config
from rewardmodel.services import base_model_choices, training_config_validate
from rewardmodel.sources import source_choices


class TrainingJobForm(forms.Form):
    name = forms.CharField(max_length=200, initial="reward-model")
    scope = forms.CharField(
        max_length=100, required=False, help_text="Optional, e.g. project:1 (gold/current best are per scope)."
    )
    source = forms.ChoiceField(
        choices=(),
        required=False,
        label="Curated data",
        help_text="A project's D_gold (frozen now as a dataset version) or a dataset version; no upload needed.",
    )
    train_data = forms.ModelChoiceField(
        queryset=DatasetFile.objects.all(), required=False, help_text="…or a registered data file."
    )
    train_upload = forms.FileField(required=False, help_text="…or upload a JSONL file (prompt, chosen, rejected).")
    eval_data = forms.ModelChoiceField(
        queryset=DatasetFile.objects.all(), required=False, help_text="D_gold: picks the best checkpoint."
    )
    eval_upload = forms.FileField(required=False)
    base_model = forms.ChoiceField(choices=())
    preset = forms.ChoiceField(
        choices=list(PRESET_LABELS.items()),
        initial="cpu_quick",
        required=False,
        widget=forms.RadioSelect,
        help_text="A preset sets every hyperparameter; choose Custom to use the raw values below.",
    )
    learning_rate = forms.FloatField(initial=2e-5, min_value=0)
    lr_scheduler = forms.ChoiceField(choices=[("constant", "constant"), ("linear", "linear")], initial="constant")
    warmup_ratio = forms.FloatField(initial=0.0, min_value=0, max_value=1)
    num_epochs = forms.IntegerField(initial=1, min_value=1)
    max_steps = forms.IntegerField(initial=0, min_value=0, help_text="> 0 overrides epochs.")
    batch_size = forms.IntegerField(initial=8, min_value=1)
    gradient_accumulation_steps = forms.IntegerField(initial=1, min_value=1)
    max_length = forms.IntegerField(initial=512, min_value=16)
    eval_every = forms.IntegerField(initial=0, min_value=0)
    save_every = forms.IntegerField(initial=50, min_value=0)
    bf16 = forms.BooleanField(initial=True, required=False, help_text="On CUDA only.")
    gradient_checkpointing = forms.BooleanField(required=False)
    processes = forms.IntegerField(
        initial=1,
        required=False,
        min_value=1,
        max_value=TrainingJob.MAX_PROCESSES,
        help_text="Training processes on the worker, one per GPU (> 1 runs torchrun as a child process group).",
    )
    accelerator = forms.ChoiceField(
        choices=TrainingJob.Accelerator.choices, initial=TrainingJob.Accelerator.AUTO, required=False
    )
    parallelism = forms.ChoiceField(
        choices=[("ddp", "DDP (full copy per GPU; up to ~1.7B)"), ("fsdp", "FSDP2 (sharded; 4B-8B models)")],
        initial="ddp",
        required=False,
        help_text="Applies with any preset; see docs/training.md.",
    )

    padding_free = forms.BooleanField(
        required=False,
        label="Padding-free batches",
        help_text="Pack each micro-batch's sequences into one row, no padding computed (decoder models: Qwen3, "
        "Llama, ...; on GPU with flash_attention_2). Applies with any preset.",
    )
    attn_implementation = forms.ChoiceField(
        choices=[("", "default (sdpa)"), *((name, name) for name in ATTENTION_CHOICES[1:])],
        required=False,
        label="Attention",
        help_text="flash_attention_2 / flash_attention_3 need the flash-attn package on the worker.",
    )

    DISTRIBUTED_FIELDS = ("processes", "accelerator", "parallelism", "padding_free", "attn_implementation")
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
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["base_model"].choices = base_model_choices()  # type: ignore[attr-defined]
        self.fields["source"].choices = [("", "—"), *source_choices()]  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("preset") in PRESETS:
            for name in self.CONFIG_FIELDS:  # the preset sets them: a blank or bad raw value does not matter
                self.errors.pop(name, None)
        picked = [name for name in ("source", "train_data", "train_upload") if data.get(name)]
        if not picked:
            self.add_error("source", "choose curated data, a data file, or upload one")
        elif len(picked) > 1:
            self.add_error(picked[1], f"choose one training source, not {' and '.join(picked)}")
        if not self.errors and data.get("base_model"):
            try:  # the trainer's own checks (e.g. padding_free on an encoder), before any upload is registered
                training_config_validate(base_model=data["base_model"], config=self.config())
            except ValidationError as exc:
                add_service_errors(self, exc)
        return data

    def config(self) -> dict[str, Any]:
        """The hyperparameters: the chosen preset's, or the raw fields with ``custom``."""
        preset = self.cleaned_data.get("preset") or CUSTOM
        config = preset_config(preset) if preset in PRESETS else {n: self.cleaned_data[n] for n in self.CONFIG_FIELDS}
        systems: dict[str, Any] = {
            "parallelism": self.cleaned_data.get("parallelism") or "ddp",
            "padding_free": bool(self.cleaned_data.get("padding_free")),
        }
        if self.cleaned_data.get("attn_implementation"):
            systems["attn_implementation"] = self.cleaned_data["attn_implementation"]
        return {**config, **systems}


class EvaluateForm(forms.Form):
    dataset = forms.ModelChoiceField(queryset=DatasetFile.objects.all(), required=False, label="Data file")
    upload = forms.FileField(required=False, help_text="RewardBench format: prompt, chosen, rejected, subset.")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("dataset") and not data.get("upload"):
            self.add_error("upload", "choose a data file or upload one")
        return data


class PromoteForm(forms.Form):
    role = forms.ChoiceField(
        choices=[(ModelVersion.Role.GOLD, "gold"), (ModelVersion.Role.CURRENT_BEST, "current best")]
    )
