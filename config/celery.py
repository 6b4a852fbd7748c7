from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("synpref")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# The shared job lifecycle's maintenance task (config/jobs.py) lives outside the apps.
app.autodiscover_tasks(["config"], related_name="jobs")
