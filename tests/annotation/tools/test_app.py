"""The tools sub-app is wired as an app of its own: task names, routes, beat, job kinds, old names."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from django.conf import settings
from django.template import engines
from django.urls import reverse
from django.utils.module_loading import import_string

from config import jobs
from config.celery import app

# name the task had under annotation/tasks.py -> the service it runs and the kwargs it is sent
OLD_NAMES = {
    "annotation.tasks.code_run_execute": ("code_run_execute", {"run_id": 7}),
    "annotation.tasks.ai_query_run": ("ai_query_run", {"query_id": 8}),
    "annotation.tasks.corpus_load_file": ("corpus_load_file", {"corpus_id": 9, "path": "/tmp/x.jsonl"}),
}


def _route(name: str) -> str:
    route: dict[str, Any] = app.amqp.router.route({}, name)
    return str(route["queue"].name)


def test_code_runs_and_the_cgroup_cleanup_go_to_the_sandbox_queue() -> None:
    assert _route("annotation.tools.tasks.code_run_execute") == "sandbox"
    assert _route("annotation.tools.tasks.code_run_cgroups_cleanup") == "sandbox"
    # AI questions and corpus loads need no sandbox
    assert _route("annotation.tools.tasks.ai_query_run") == app.conf.task_default_queue
    assert _route("annotation.tools.tasks.corpus_load_file") == app.conf.task_default_queue


def test_every_beat_entry_names_a_registered_task() -> None:
    app.loader.import_default_modules()
    missing = {key: e["task"] for key, e in settings.CELERY_BEAT_SCHEDULE.items() if e["task"] not in app.tasks}
    assert missing == {}


def test_tools_job_kinds_name_tools_models_and_registered_tasks() -> None:
    tools_kinds = [kind for kind in jobs.kinds() if kind.model.startswith("tools.")]
    assert {kind.key for kind in tools_kinds} == {"code run", "AI question", "corpus load"}
    for kind in tools_kinds:
        assert kind.model_class._meta.app_label == "tools"
        task = import_string(kind.task)
        assert task.name.startswith("annotation.tools.tasks."), kind.key
        assert task.name in app.tasks
        if kind.on_end:
            assert callable(import_string(kind.on_end))


@pytest.mark.parametrize("old_name", sorted(OLD_NAMES))
def test_messages_sent_under_the_old_names_still_do_the_work(old_name: str) -> None:
    """A message queued before the carve (old task name) runs the same service as the new name."""
    app.loader.import_default_modules()
    service, kwargs = OLD_NAMES[old_name]
    with mock.patch(f"annotation.tools.services.{service}", return_value=None) as run:
        app.tasks[old_name](**kwargs)
    run.assert_called_once_with(**kwargs)


def test_the_old_cgroup_cleanup_name_still_cleans_up() -> None:
    app.loader.import_default_modules()
    with mock.patch("annotation.tools.services.sandbox_cgroups_cleanup", return_value=["a", "b"]) as clean:
        assert app.tasks["annotation.tasks.code_run_cgroups_cleanup"]() == 2
    clean.assert_called_once_with()


def test_tool_pages_keep_their_names_and_tags_load() -> None:
    assert reverse("annotation:tools:corpus-list") == "/tools/corpora/"
    template = engines["django"].from_string('{% load tools_extras %}{{ "cpu_time"|limit_label }}')
    assert template.render({}) == "CPU time"
