"""Training a reward model on a project's curated data, through ``rewardmodel.services``.

rewardmodel knows nothing of projects: curation hands it the registered files of a dataset
version (its training file and its D_gold validation file) under the project's scope.
"""

from __future__ import annotations

from typing import Any

from curation.datasets import dataset_version_source_label, project_scope
from curation.models import DatasetVersion
from rewardmodel.models import DatasetFile, TrainingJob
from rewardmodel.services import training_job_create


def dataset_version_train(
    *,
    version: DatasetVersion,
    name: str = "",
    base_model: str = "default",
    config: dict[str, Any] | None = None,
    created_by: Any = None,
    eval_data: DatasetFile | None = None,
) -> TrainingJob:
    """Queue a training job on ``version``: its training file, validated on its D_gold file (when it has one).

    The job's scope is the project's (``project:<id>``), so its model can be promoted to the
    project's gold or current-best model; ``config`` is a partial RewardTrainingConfig.
    """
    project = version.project
    return training_job_create(
        name=name or f"{project.name} {version.name}",
        train_data=version.train_data,
        eval_data=eval_data or version.eval_data,
        base_model=base_model,
        config=config or {},
        scope=project_scope(project),
        created_by=created_by,
        data_source=dataset_version_source_label(version),  # the job records which version it trained on
    )
