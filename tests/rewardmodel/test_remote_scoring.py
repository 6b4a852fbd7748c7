"""Scoring through an attached scoring server: formatting, routing, stage 2 end to end, pages, API and roles."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from curation.models import PairScore
from curation.stage2 import engine
from curation.stage2.models import Stage2Run
from devtools.scoring_stub import StubServer, stub_logit
from rewardmodel import scoring
from rewardmodel.models import ModelVersion, ScoringServer
from rewardmodel.servers import model_version_attach_server, scoring_server_save
from tests.conftest import PASSWORD
from tests.factories import PairFactory

CONVERSATION = [
    {"role": "user", "content": "How do I reverse a list in Python?"},
    {"role": "assistant", "content": "Which list?"},
    {"role": "user", "content": "Any list, please answer politely."},
]


@pytest.fixture(scope="module")
def decoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Qwen3-style reward model with a ChatML template (byte-level BPE, no BOS)."""
    from rewardmodel.ml.backbones import build_tiny_decoder

    corpus = [m["content"] for m in CONVERSATION] + ["Use reversed() or slicing.", "No.", "thanks a lot"] * 5
    return build_tiny_decoder(tmp_path_factory.mktemp("tiny-qwen"), corpus, max_position_embeddings=64)


@pytest.fixture
def vllm() -> Iterator[StubServer]:
    with StubServer("vllm", model="rm-served") as server:
        yield server


def make_server(stub: StubServer, name: str = "gpus", **fields: Any) -> ScoringServer:
    values = {"kind": stub.kind, "base_urls": stub.url, "served_model": stub.model, "batch_size": 4, **fields}
    return scoring_server_save(server=ScoringServer(name=name, **values))


# --- formatting: the server gets the text of exactly the ids the in-process scorer scores -------


@pytest.mark.parametrize("server_adds_special_tokens", [False, True])
def test_server_text_tokenizes_back_to_the_scorers_ids(decoder_dir: Path, server_adds_special_tokens: bool) -> None:
    from rewardmodel.ml.infer import Scorer, ServerTextFormatter

    scorer = Scorer.from_pretrained(decoder_dir)
    formatter = ServerTextFormatter.from_pretrained(decoder_dir, server_adds_special_tokens=server_adds_special_tokens)
    assert formatter.max_length == scorer.max_length == 64  # clamped to the model's position limit alike
    long_answer = "Use reversed() or slicing. " * 30  # longer than 64 tokens: truncation applies
    prompts: list[Any] = [CONVERSATION, CONVERSATION, "\n\nHuman: thanks\n\nAssistant:"]
    responses = ["Use reversed() or slicing.", long_answer, "No."]
    texts = formatter.texts(prompts, responses)
    expected = scorer.encoder.encode(prompts, responses)
    for text, ids in zip(texts, expected, strict=True):
        again = scorer.tokenizer(text, add_special_tokens=server_adds_special_tokens)["input_ids"]
        assert again == [int(i) for i in ids]
    assert texts[0].startswith("<|im_start|>user\nHow do I reverse") and texts[0].endswith("<|im_end|>\n")
    assert len(expected[1]) == 64 and "slicing" in texts[1]  # the response survives truncation


def test_plain_form_strips_the_tokens_sglang_adds_itself(tiny_model_dir: Path) -> None:
    """BERT-style: the server's tokenizer adds [CLS]/[SEP] itself, so the text must not carry them."""
    from rewardmodel.ml.infer import Scorer, ServerTextFormatter

    scorer = Scorer.from_pretrained(tiny_model_dir)
    formatter = ServerTextFormatter.from_pretrained(tiny_model_dir, server_adds_special_tokens=True)
    prompts, responses = ["\n\nHuman: is the sky blue?\n\nAssistant:"], ["yes it is blue"]
    (text,) = formatter.texts(prompts, responses)
    (ids,) = scorer.encoder.encode(prompts, responses)
    assert "[CLS]" not in text and "[SEP]" not in text
    assert scorer.tokenizer(text)["input_ids"] == [int(i) for i in ids]


# --- routing ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_pairs_score_goes_to_the_attached_server_and_loads_no_weights(decoder_dir: Path, vllm: StubServer) -> None:
    version = ModelVersion.objects.create(name="rm-1", base_model="x", path=str(decoder_dir))
    model_version_attach_server(version=version, server=make_server(vllm))
    scoring._scorers.clear()
    items = [(CONVERSATION, f"answer {i}", f"other {i}") for i in range(5)]
    got = scoring.pairs_score(model_path=str(decoder_dir), items=items, batch_size=64)
    from rewardmodel.ml.infer import ServerTextFormatter

    fmt = ServerTextFormatter.from_pretrained(decoder_dir)
    want = [(stub_logit(fmt.texts([c], [a])[0]), stub_logit(fmt.texts([c], [b])[0])) for c, a, b in items]
    assert got == want
    assert sorted(vllm.batch_sizes()) == [2, 4, 4]  # 10 texts in batches of the server's size (4)
    assert scoring._scorers == {}  # the model itself was never loaded


@pytest.mark.django_db
def test_the_rounds_scorer_goes_to_the_attached_server(decoder_dir: Path, vllm: StubServer) -> None:
    """Curation rounds score through ``reward_scorer_load``: it sends the pairs to the server too."""
    import math

    from rewardmodel.ml.infer import ServerTextFormatter
    from rewardmodel.services import reward_scorer_load

    version = ModelVersion.objects.create(name="rm-r", base_model="x", path=str(decoder_dir))
    model_version_attach_server(version=version, server=make_server(vllm))
    records = [{"prompt": CONVERSATION, "chosen": f"yes {i}", "rejected": "no"} for i in range(3)]
    got = reward_scorer_load(model_path=str(decoder_dir)).score_pairs(records)
    fmt = ServerTextFormatter.from_pretrained(decoder_dir)
    for i, r in enumerate(records):
        chosen, rejected = (stub_logit(t) for t in fmt.texts([r["prompt"]] * 2, [r["chosen"], r["rejected"]]))
        assert (got["r_chosen"][i], got["r_rejected"][i]) == pytest.approx((chosen, rejected))
        assert got["p"][i] == pytest.approx(1 / (1 + math.exp(rejected - chosen)))
    assert sorted(vllm.batch_sizes()) == [2, 4]


# --- stage 2, end to end ---------------------------------------------------------------------


@pytest.fixture
def attached_models(project: Any, decoder_dir: Path, tmp_path: Path, vllm: StubServer) -> dict[str, Any]:
    scope = f"project:{project.pk}"
    server = make_server(vllm)
    models = {}
    for name in ("gold", "best"):
        path = shutil.copytree(decoder_dir, tmp_path / name)
        models[name] = ModelVersion.objects.create(
            name=f"{name}-{project.pk}",
            scope=scope,
            base_model="x",
            path=str(path),
            is_gold=name == "gold",
            is_current_best=name == "best",
            scoring_server=server,
        )
    pairs = [
        PairFactory(
            project=project, source_label="A", conversation=CONVERSATION, response_a=f"yes {i}", response_b="no"
        )
        for i in range(6)
    ]
    return {"server": server, "pairs": pairs, **models}


def run_all(run: Stage2Run) -> None:
    for shard_id in run.shards.order_by("index").values_list("pk", flat=True):
        engine.stage2_shard_run(shard_id=shard_id)


@pytest.mark.django_db
def test_stage2_stores_the_servers_raw_scores(project: Any, attached_models: dict[str, Any], vllm: StubServer) -> None:
    from rewardmodel.ml.infer import ServerTextFormatter

    run = engine.stage2_run_create(project=project, config={"shard_size": 4}, enqueue=False)
    run_all(run)
    run.refresh_from_db()
    assert run.status == Stage2Run.Status.DONE, run.error
    fmt = ServerTextFormatter.from_pretrained(attached_models["gold"].path)
    received = set(vllm.texts())
    for pair in attached_models["pairs"]:
        text_a, text_b = fmt.texts([pair.conversation] * 2, [pair.response_a, pair.response_b])
        assert {text_a, text_b} <= received
        for model in (attached_models["gold"], attached_models["best"]):
            score = PairScore.objects.get(pair=pair, model_version=model)
            assert (score.r_a, score.r_b) == pytest.approx((stub_logit(text_a), stub_logit(text_b)))
    assert all(size <= 4 for size in vllm.batch_sizes())


def test_a_real_worker_scores_a_stage2_run_on_two_servers(
    project: Any, attached_models: dict[str, Any], vllm: StubServer, celery_worker: Any
) -> None:
    """Enqueued shards, a real Celery worker, the scores spread over two servers (two GPUs)."""
    from tests.conftest import wait_for

    with StubServer("vllm", model=vllm.model) as second:
        server = attached_models["server"]
        server.base_urls = f"{vllm.url}\n{second.url}"
        server.concurrency = 2
        scoring_server_save(server=server)
        run = engine.stage2_run_create(project=project, config={"shard_size": 3})
        wait_for(lambda: Stage2Run.objects.get(pk=run.pk).status in (Stage2Run.Status.DONE, Stage2Run.Status.FAILED))
        run.refresh_from_db()
        assert run.status == Stage2Run.Status.DONE, run.error
        assert vllm.requests and second.requests
        received = {t: stub_logit(t) for t in vllm.texts() + second.texts()}
    scores = PairScore.objects.filter(model_version__in=[attached_models["gold"], attached_models["best"]])
    assert scores.count() == 12
    assert {round(s.r_a, 5) for s in scores} <= {round(v, 5) for v in received.values()}


@pytest.mark.django_db
def test_a_server_error_fails_the_shard_with_a_clear_message_and_resume_finishes(
    client: Any, project: Any, attached_models: dict[str, Any], vllm: StubServer
) -> None:
    server = attached_models["server"]
    server.served_model = "not-served"
    scoring_server_save(server=server)
    run = engine.stage2_run_create(project=project, enqueue=False)
    run_all(run)
    run.refresh_from_db()
    assert run.status == Stage2Run.Status.FAILED
    assert "ServerRejected" in run.error and "HTTP 404: The model `not-served` does not exist" in run.error
    assert not PairScore.objects.filter(model_version__in=[attached_models["gold"], attached_models["best"]]).exists()
    client.login(username="adam", password=PASSWORD)
    page = client.get(reverse("curation:stage2-detail", args=[project.pk, run.pk])).content.decode()
    assert "The model `not-served` does not exist" in page

    server.served_model = vllm.model
    scoring_server_save(server=server)
    engine.stage2_run_resume(run=run)
    run_all(run)
    run.refresh_from_db()
    assert run.status == Stage2Run.Status.DONE
    assert PairScore.objects.filter(model_version=attached_models["best"]).count() == 6


# --- pages, API, roles -----------------------------------------------------------------------


@pytest.fixture
def admin_client(client: Any, users: dict[str, Any]) -> Any:
    client.login(username="adam", password=PASSWORD)
    return client


@pytest.mark.django_db
def test_admin_adds_a_server_and_the_key_never_shows(admin_client: Any, vllm: StubServer) -> None:
    form = {
        "name": "h200s",
        "kind": "vllm",
        "base_urls": f"{vllm.url}\n",
        "served_model": vllm.model,
        "new_api_key": "sk-very-secret-77",
        "batch_size": 16,
        "concurrency": 2,
        "timeout_s": 30,
        "max_retries": 3,
        "check_saturation": "on",
    }
    response = admin_client.post(reverse("rewardmodel:server-new"), form)
    assert response.status_code == 302
    server = ScoringServer.objects.get(name="h200s")
    assert server.api_key == "sk-very-secret-77" and server.url_list == [vllm.url]
    for url in (reverse("rewardmodel:server-list"), reverse("rewardmodel:server-edit", args=[server.pk])):
        html = admin_client.get(url).content.decode()
        assert "sk-very-secret-77" not in html and "h200s" in html
    # editing without a key keeps it
    admin_client.post(
        reverse("rewardmodel:server-edit", args=[server.pk]), {**form, "new_api_key": "", "batch_size": 8}
    )
    server.refresh_from_db()
    assert server.batch_size == 8 and server.api_key == "sk-very-secret-77"


@pytest.mark.django_db
def test_bad_base_urls_are_refused_naming_the_line(admin_client: Any) -> None:
    form = {"name": "x", "kind": "vllm", "served_model": "m", "batch_size": 4, "concurrency": 1, "timeout_s": 5}
    form["max_retries"] = 1
    html = admin_client.post(
        reverse("rewardmodel:server-new"), {**form, "base_urls": "http://ok:8000\nhttp://gpu1:8000/v1"}
    ).content.decode()
    assert "line 2: give the server root, without /v1" in html
    html = admin_client.post(reverse("rewardmodel:server-new"), {**form, "base_urls": "gpu1:8000"}).content.decode()
    assert "line 1: &#x27;gpu1:8000&#x27; is not an http(s) URL" in html
    assert not ScoringServer.objects.exists()


@pytest.mark.django_db
def test_ping_shows_raw_scores_of_the_known_pair(admin_client: Any) -> None:
    with StubServer("sglang", api_key="sk-ping-1") as stub:
        server = make_server(stub, api_key="sk-ping-1")
        html = admin_client.post(
            reverse("rewardmodel:server-ping", args=[server.pk]), HTTP_HX_REQUEST="true"
        ).content.decode()
    chosen = stub_logit("Human: What is 2 + 2?\n\nAssistant: 2 + 2 = 4.")
    assert f"{chosen:.4f}" in html and "raw scores" in html and stub.url in html
    assert "sk-ping-1" not in html


@pytest.mark.django_db
def test_ping_flags_a_server_returning_probabilities(admin_client: Any) -> None:
    with StubServer("vllm", ignore_use_activation=True) as old:
        server = make_server(old)
        html = admin_client.post(reverse("rewardmodel:server-ping", args=[server.pk])).content.decode()
    assert "may be applying a sigmoid" in html


@pytest.mark.django_db
def test_ping_reports_an_unreachable_server(admin_client: Any) -> None:
    dead = StubServer("vllm")
    url = dead.url
    dead.server_close()
    server = scoring_server_save(server=ScoringServer(name="dead", kind="vllm", base_urls=url, served_model="m"))
    html = admin_client.post(reverse("rewardmodel:server-ping", args=[server.pk])).content.decode()
    assert f"cannot reach {url}/classify" in html


@pytest.mark.django_db
def test_admin_attaches_and_detaches_a_server(admin_client: Any, vllm: StubServer) -> None:
    server = make_server(vllm)
    version = ModelVersion.objects.create(name="rm-9", base_model="x", path="/models/rm-9")
    url = reverse("rewardmodel:version-attach-server", args=[version.pk])
    assert admin_client.post(url, {"server": server.pk}).status_code == 302
    version.refresh_from_db()
    assert version.scoring_server == server
    assert "gpus" in admin_client.get(reverse("rewardmodel:version-detail", args=[version.pk])).content.decode()
    admin_client.post(url, {"server": ""})
    version.refresh_from_db()
    assert version.scoring_server is None


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["alice", "lena"])
def test_annotators_and_leads_get_403(client: Any, users: dict[str, Any], vllm: StubServer, who: str) -> None:
    server = make_server(vllm)
    version = ModelVersion.objects.create(name="rm-3", base_model="x", path="/models/rm-3")
    client.login(username=who, password=PASSWORD)
    assert client.get(reverse("rewardmodel:server-list")).status_code == 403
    assert client.get(reverse("rewardmodel:server-new")).status_code == 403
    assert client.post(reverse("rewardmodel:server-new"), {"name": "x"}).status_code == 403
    assert client.post(reverse("rewardmodel:server-ping", args=[server.pk])).status_code == 403
    assert client.post(reverse("rewardmodel:server-delete", args=[server.pk])).status_code == 403
    attach = reverse("rewardmodel:version-attach-server", args=[version.pk])
    assert client.post(attach, {"server": server.pk}).status_code == 403
    api = APIClient()
    token, _ = Token.objects.get_or_create(user=users[who])
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert api.get("/api/scoring-servers/").status_code == 403
    assert api.post(f"/api/model-versions/{version.pk}/scoring-server/", {"server": server.pk}).status_code == 403
    assert vllm.requests == [] and ScoringServer.objects.count() == 1
    version.refresh_from_db()
    assert version.scoring_server is None


@pytest.mark.django_db
def test_api_creates_pings_and_attaches_without_returning_the_key(users: dict[str, Any], vllm: StubServer) -> None:
    api = APIClient()
    token, _ = Token.objects.get_or_create(user=users["adam"])
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    body = {"name": "api-gpus", "kind": "vllm", "base_urls": [vllm.url], "served_model": vllm.model}
    response = api.post("/api/scoring-servers/", {**body, "api_key": "sk-api-secret"}, format="json")
    assert response.status_code == 201, response.content
    assert "sk-api-secret" not in response.content.decode() and response.json()["has_key"] is True
    server_id = response.json()["id"]
    assert "sk-api-secret" not in api.get("/api/scoring-servers/").content.decode()
    bad = api.post("/api/scoring-servers/", {**body, "name": "v1", "base_urls": ["http://x:1/v1"]}, format="json")
    assert bad.status_code == 400 and "without /v1" in bad.content.decode()
    version = ModelVersion.objects.create(name="rm-4", base_model="x", path="/models/rm-4")
    attached = api.post(f"/api/model-versions/{version.pk}/scoring-server/", {"server": server_id}, format="json")
    assert attached.status_code == 200 and attached.json()["scoring_server_id"] == server_id
    ping = api.post(f"/api/scoring-servers/{server_id}/ping/")
    assert ping.status_code == 200 and ping.json()["ok"] is True
    (result,) = ping.json()["results"]
    assert result["r_chosen"] == stub_logit("Human: What is 2 + 2?\n\nAssistant: 2 + 2 = 4.")
    assert vllm.headers_seen[-1]["Authorization"] == "Bearer sk-api-secret"  # sent, never returned
    assert "sk-api-secret" not in ping.content.decode()
