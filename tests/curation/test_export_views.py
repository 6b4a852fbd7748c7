"""Export and dataset-version pages, the Models page's curated sources, and dataset versions built by the record builder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.test import Client
from django.urls import reverse

from curation.datasets import dataset_version_freeze, dataset_version_freeze_gold
from curation.models import DatasetVersion, VerifiedPair
from rewardmodel.models import TrainingJob
from tests.curation import test_export

pytestmark = pytest.mark.usefixtures("curation_urls")
curated = test_export.curated  # the same curated project: verified, waiting, disputed and discarded pairs


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def lines(response: Any) -> list[dict[str, Any]]:
    return [json.loads(x) for x in b"".join(response.streaming_content).decode().splitlines()]


def test_export_page_downloads_verified_data(project: Any, users: dict[str, Any], curated: dict[str, Any]) -> None:
    url = reverse("curation:export", args=[project.pk])
    page = client_for(users["lena"]).get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Verified" in html and "Open disputes" in html and "Download" in html

    response = client_for(users["lena"]).get(url, {"format": "conversational", "selection": "verified"})
    assert (
        response.status_code == 200 and response["Content-Disposition"] == 'attachment; filename="test-project.jsonl"'
    )
    rows = lines(response)
    assert {r["pair_id"] for r in rows} == set(VerifiedPair.objects.values_list("pair_id", flat=True))
    assert all(r["verified"] for r in rows)

    disputed = client_for(users["adam"]).get(url, {"format": "standard", "selection": "disputed"})
    assert disputed["Content-Disposition"].endswith('-disputed.jsonl"')
    assert [r["state"] for r in lines(disputed)] == ["disputed"]


def test_export_page_rejects_bad_options_and_roles(project: Any, users: dict[str, Any]) -> None:
    url = reverse("curation:export", args=[project.pk])
    bad = client_for(users["adam"]).get(url, {"format": "csv"})
    assert bad.status_code == 200 and not bad.streaming and b"Select a valid choice" in bad.content
    assert client_for(users["alice"]).get(url).status_code == 403  # annotators do not export
    assert client_for(users["dave"]).get(url).status_code == 404  # not a member


def test_the_old_export_address_redirects_with_its_query(project: Any, users: dict[str, Any]) -> None:
    response = client_for(users["lena"]).get(f"/projects/{project.pk}/export/?format=standard")
    assert response.status_code == 302
    assert response["Location"] == reverse("curation:export", args=[project.pk]) + "?format=standard"


def test_dataset_version_lines_come_from_the_record_builder(project: Any, curated: dict[str, Any]) -> None:
    verified = dict(VerifiedPair.objects.values_list("pair_id", "via"))
    # The split hashes pair ids, which differ per database: pin the newest pair to the validation half so
    # both halves are there (an all-validation draw would leave no training data and refuse the freeze).
    last = max(verified)
    with mock.patch("curation.datasets.in_validation_split", lambda pair_id, fraction: pair_id == last):
        version = dataset_version_freeze_gold(project=project, gold_val_fraction=0.5)
    assert version.filters["kind"] == "gold"
    rows = [json.loads(x) for x in Path(version.train_data.path).read_text().splitlines()]
    if version.eval_data:
        rows += [json.loads(x) for x in Path(version.eval_data.path).read_text().splitlines()]
    assert {r["pair_id"] for r in rows} == set(verified)  # D_gold only: nothing pending, disputed or discarded
    for row in rows:
        assert row["verified"] is True and row["via"] == verified[row["pair_id"]]
        assert row["dataset_version"] == version.name
        assert row["split"] == ("gold_val" if row["pair_id"] == last else "gold_train")
        assert isinstance(row["prompt"], list) and isinstance(row["chosen"], str)  # what rewardmodel.ml reads
    lead_row = next(r for r in rows if r["via"] == "lead")
    assert lead_row["label"] == "A_CLEARLY" and lead_row["chosen"] == curated["pairs"][2].response_a
    assert version.counts["via_lead"] == 1 and version.counts["via_majority"] == 2


def test_round_versions_keep_disputed_and_discarded_pairs_out_of_silver(project: Any, curated: dict[str, Any]) -> None:
    version = dataset_version_freeze(project=project, name="r1", gold_val_fraction=0.0)
    rows = [json.loads(x) for x in Path(version.train_data.path).read_text().splitlines()]
    by_pair = {r["pair_id"]: r for r in rows}
    p4, p5, p6, p7 = curated["pairs"][3:]
    assert p6.pk not in by_pair and p7.pk not in by_pair  # disputed, discarded
    assert by_pair[p4.pk]["split"] == "silver" and by_pair[p4.pk]["via"] == "source"
    assert by_pair[p4.pk]["verified"] is False
    assert version.eval_data is None and version.counts["gold_train"] == 3


def test_datasets_page_freezes_gold_and_trains_on_a_version(
    project: Any, users: dict[str, Any], curated: dict[str, Any]
) -> None:
    admin, lead = client_for(users["adam"]), client_for(users["lena"])
    freeze = reverse("curation:dataset-freeze-gold", args=[project.pk])
    assert lead.post(freeze).status_code == 403 and not DatasetVersion.objects.exists()
    # The fixture has two verified pairs and the split hashes pair ids (which differ per database):
    # pin one pair to each half, so the version always has a training half.
    verified = sorted(VerifiedPair.objects.filter(project=project).values_list("pair_id", flat=True))
    with mock.patch("curation.datasets.in_validation_split", lambda pair_id, fraction: pair_id == verified[-1]):
        assert admin.post(freeze).status_code == 302
    version = DatasetVersion.objects.get()
    page = lead.get(reverse("curation:dataset-list", args=[project.pk]))
    assert page.status_code == 200 and version.name in page.content.decode()
    assert "gold_train" in page.content.decode() and "Freeze D_gold now" not in page.content.decode()
    assert (
        version.name
        in admin.get(reverse("curation:dataset-list", args=[project.pk]), {"kind": "gold"}).content.decode()
    )
    assert (
        version.name
        not in lead.get(reverse("curation:dataset-list", args=[project.pk]), {"kind": "round"}).content.decode()
    )
    download = lead.get(reverse("curation:dataset-download", args=[project.pk, version.pk, "train"]))
    assert download.status_code == 200

    train = reverse("curation:dataset-train", args=[project.pk, version.pk])
    assert lead.post(train, {"base_model": "default", "num_epochs": 1, "max_steps": 1}).status_code == 403
    response = admin.post(train, {"base_model": "default", "num_epochs": 1, "max_steps": 1})
    job = TrainingJob.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("rewardmodel:job-detail", args=[job.pk])
    assert job.data_source.startswith(f"dataset-version:{version.pk} ") and job.train_data == version.train_data
    assert job.scope == f"project:{project.pk}"
    bad = admin.post(train, {"base_model": "nope", "num_epochs": 1, "max_steps": 1})
    assert bad.status_code == 302 and TrainingJob.objects.count() == 1


def test_freezing_an_empty_d_gold_says_why(project: Any, users: dict[str, Any]) -> None:
    response = client_for(users["adam"]).post(reverse("curation:dataset-freeze-gold", args=[project.pk]), follow=True)
    assert "no training data" in response.content.decode() and not DatasetVersion.objects.exists()


def test_models_page_trains_on_a_projects_d_gold_without_an_upload(
    project: Any, users: dict[str, Any], curated: dict[str, Any]
) -> None:
    admin = client_for(users["adam"])
    form = admin.get(reverse("rewardmodel:job-create")).content.decode()
    assert f"curation:gold:{project.pk}" in form
    data = {
        "name": "gold-run",
        "source": f"curation:gold:{project.pk}",
        "base_model": "default",
        "learning_rate": 2e-5,
        "lr_scheduler": "constant",
        "warmup_ratio": 0,
        "num_epochs": 1,
        "max_steps": 1,
        "batch_size": 2,
        "gradient_accumulation_steps": 1,
        "max_length": 64,
        "eval_every": 0,
        "save_every": 0,
    }
    # Two verified pairs and a split that hashes pair ids (they differ per database): pin one to each half.
    last = max(VerifiedPair.objects.filter(project=project).values_list("pair_id", flat=True))
    with mock.patch("curation.datasets.in_validation_split", lambda pair_id, fraction: pair_id == last):
        response = admin.post(reverse("rewardmodel:job-create"), data)
    job = TrainingJob.objects.get()
    assert response.status_code == 302
    version = DatasetVersion.objects.get()
    assert job.data_source == f"dataset-version:{version.pk} ({project.name} / {version.name})"
    assert job.train_data == version.train_data and job.eval_data == version.eval_data
    assert job.scope == f"project:{project.pk}"
    detail = admin.get(reverse("rewardmodel:job-detail", args=[job.pk])).content.decode()
    assert f"dataset-version:{version.pk}" in detail

    again = admin.post(reverse("rewardmodel:job-create"), {**data, "source": f"curation:version:{version.pk}"})
    assert again.status_code == 302 and DatasetVersion.objects.count() == 1  # a chosen version is not re-frozen
    unknown = admin.post(reverse("rewardmodel:job-create"), {**data, "source": "curation:version:99999"})
    assert unknown.status_code == 200 and TrainingJob.objects.count() == 2
