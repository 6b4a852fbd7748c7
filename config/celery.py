from __future__ import annotations

import os

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("synpref")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# The shared job lifecycle's maintenance task (config/jobs.py) lives outside the apps.
app.autodiscover_tasks(["config"], related_name="jobs")


@worker_init.connect
def _export_concurrency(sender: object = None, **_: object) -> None:
    """Tell the pool's processes how many of them share the host: in-process scoring sizes its torch
    threads from it (``rewardmodel.scoring.torch_threads``, setting ``RM_TORCH_THREADS``)."""
    concurrency = getattr(sender, "concurrency", None)
    if isinstance(concurrency, int) and concurrency > 0:  # not Celery's "auto", resolved later
        os.environ["SYNPREF_WORKER_CONCURRENCY"] = str(concurrency)
