"""Annotation serving under load, as in production: gunicorn + PostgreSQL, 50 concurrent annotators.

    .venv/bin/python bench/serve_bench.py [--annotators 50] [--seconds 60] [--workers 4] [--threads 4]
    .venv/bin/python bench/serve_bench.py --mode web [--panels] [--arrival-rate 20]

``--mode api`` (default): each simulated annotator loops POST /api/projects/<id>/next/ then POST
/api/assignments/<id>/submit/ with a random label, over token auth.

``--mode web``: the labelling page as a browser drives it. Each annotator logs in through the
log-in form (session cookie, CSRF), opens the labelling page, then loops the htmx submit-and-next
(POST /projects/<id>/label/ with HX-Request; the response is the next pair's fragment). With
``--panels`` they also open one tool panel per pair (the search tab), as an annotator who keeps a
tool tab open does. Before the load, the same requests are made in-process with Django's test
client to count SQL queries per pair (submit-and-next, and each tool panel).

Closed loop by default (each annotator sends the next request when the last one answered);
``--arrival-rate R`` makes it open loop: submits are scheduled at R per second (Poisson arrivals)
and handed to whichever annotator is free, and latency counts from the scheduled time, so queueing
shows in p95 (no coordinated omission).

Prints latency p50/p95 and submits/s, then checks the database: every submit the clients saw
succeed is stored (lost = 0), no pair has more than N regular labels, and no annotator two labels on
one pair (double-assigned = 0).
"""

from __future__ import annotations

import argparse
import os
import queue
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests
from _setup import ROOT, fresh_postgres, generated_pairs, write_jsonl

PREFERENCES = ["LEFT_CLEARLY", "LEFT_SLIGHTLY", "RIGHT_SLIGHTLY", "RIGHT_CLEARLY", "UNDECIDABLE"]
PASSWORD = "bench-password-1"
ASSIGNMENT_RE = re.compile(r'name="assignment" value="(\d+)"')
SEARCH_PANEL_RE = re.compile(r'id="tools-search" hx-get="([^"]+)"')
TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--annotators", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--pairs", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--mode", choices=["api", "web"], default="api")
    parser.add_argument("--panels", action="store_true", help="web mode: open the search panel on every pair")
    parser.add_argument("--arrival-rate", type=float, default=0.0, help="open loop: submits per second (0: closed)")
    args = parser.parse_args()
    url = fresh_postgres("synpref_bench_serve")

    from django.db.models import Count
    from rest_framework.authtoken.models import Token

    from annotation.models import Annotation, Role
    from annotation.services import import_file, project_create, user_create

    project = project_create(name="serve-bench", annotators_per_pair=3)
    path = Path("/tmp/serve_bench_pairs.jsonl")
    write_jsonl(path, generated_pairs(args.pairs))
    import_file(project=project, path=path)
    tokens = []
    for i in range(args.annotators):
        user = user_create(username=f"ann{i:03d}", password=PASSWORD, roles=[Role.ANNOTATOR.value])
        project.members.add(user)
        tokens.append(Token.objects.create(user=user).key)

    if args.mode == "web":
        print(queries_per_pair(project, panels=True))

    port = free_port()
    env = {**os.environ, "DATABASE_URL": url, "DEBUG": "false", "DB_CONN_MAX_AGE": "60", "LOG_LEVEL": "WARNING"}
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(args.workers),
            "--threads",
            str(args.threads),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                requests.get(f"{base}/accounts/login/", timeout=5)
                break
            except requests.RequestException:  # not up yet, or still booting workers on a busy machine
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)

        next_ms: list[float] = []
        submit_ms: list[float] = []
        succeeded: list[int] = []
        failures: list[str] = []
        lock = threading.Lock()
        stop_at = time.monotonic() + args.seconds
        # Web mode: the clock starts once every annotator has logged in (password hashing is slow on purpose).
        logged_in = threading.Barrier(args.annotators + 1)
        go = threading.Event()
        clock = {"stop_at": stop_at}

        tickets: queue.Queue[float | None] = queue.Queue()

        def next_ticket() -> float | None:
            """Closed loop: go now. Open loop: wait for a scheduled arrival (its time), None to stop."""
            if not args.arrival_rate:
                return time.perf_counter() if time.monotonic() < clock["stop_at"] else None
            return tickets.get()

        def web_annotator(index: int, seed: int) -> None:
            rng = random.Random(seed)
            session = requests.Session()
            login_status, match, page_text = 0, None, ""
            try:  # whatever happens, reach the barrier: the others wait there
                session.get(f"{base}/accounts/login/", timeout=120)
                login = session.post(
                    f"{base}/accounts/login/",
                    data={
                        "username": f"ann{index:03d}",
                        "password": PASSWORD,
                        "csrfmiddlewaretoken": session.cookies.get("csrftoken", ""),
                    },
                    headers={"Referer": f"{base}/accounts/login/"},
                    timeout=120,
                )
                page = session.get(f"{base}/projects/{project.pk}/label/", timeout=120)
                login_status, match, page_text = login.status_code, ASSIGNMENT_RE.search(page.text), page.text
            except requests.RequestException as exc:
                with lock:
                    failures.append(f"login {type(exc).__name__}")
            logged_in.wait(timeout=600)
            go.wait(timeout=600)
            if login_status != 200 or match is None:
                with lock:
                    failures.append(f"login/page {login_status}")
                return
            headers = {"HX-Request": "true", "X-CSRFToken": session.cookies.get("csrftoken", ""), "Referer": base}
            html = page_text
            while True:
                scheduled = next_ticket()
                if scheduled is None:
                    return
                if args.panels:
                    panel = SEARCH_PANEL_RE.search(html)
                    if panel:
                        opened = session.get(base + panel.group(1), headers=headers, timeout=30)
                        if opened.status_code != 200:
                            with lock:
                                failures.append(f"panel {opened.status_code}")
                body = {
                    "assignment": match.group(1),
                    "preference": rng.choice(PREFERENCES),
                    "task_category": rng.choice(project.taxonomy),
                    "objectivity": rng.choice(["factual", "opinion", "open_ended"]),
                    "controversiality": rng.choice(["low", "medium", "high"]),
                    "desired_attributes": rng.sample(project.desired_attributes, 2),
                    "guideline": "",
                    "rationale": "simulated annotator",
                    "time_spent_ms": rng.randint(5_000, 60_000),
                }
                response = session.post(f"{base}/projects/{project.pk}/label/", data=body, headers=headers, timeout=60)
                elapsed = (time.perf_counter() - scheduled) * 1000
                ok = response.status_code == 200 and "Saved." in response.text
                with lock:
                    if ok:
                        submit_ms.append(elapsed)
                        succeeded.append(int(match.group(1)))
                    else:
                        failures.append(f"submit {response.status_code}")
                html = response.text
                match = ASSIGNMENT_RE.search(html)
                if match is None:  # queue empty
                    return

        def annotator(token: str, seed: int) -> None:
            rng = random.Random(seed)
            session = requests.Session()
            session.headers["Authorization"] = f"Token {token}"
            while time.monotonic() < stop_at:
                start = time.perf_counter()
                response = session.post(f"{base}/api/projects/{project.pk}/next/", timeout=30)
                elapsed = (time.perf_counter() - start) * 1000
                if response.status_code == 204:
                    return
                if response.status_code != 200:
                    with lock:
                        failures.append(f"next {response.status_code}")
                    continue
                item = response.json()
                body = {
                    "preference": rng.choice(PREFERENCES),
                    "task_category": rng.choice(item["taxonomy"]),
                    "objectivity": rng.choice(["factual", "opinion", "open_ended"]),
                    "controversiality": rng.choice(["low", "medium", "high"]),
                    "desired_attributes": rng.sample(item["desired_attributes"], 2),
                    "rationale": "simulated annotator",
                    "time_spent_ms": rng.randint(5_000, 60_000),
                }
                start = time.perf_counter()
                submitted = session.post(
                    f"{base}/api/assignments/{item['assignment_id']}/submit/", json=body, timeout=30
                )
                submit_elapsed = (time.perf_counter() - start) * 1000
                with lock:
                    next_ms.append(elapsed)
                    if submitted.status_code == 201:
                        submit_ms.append(submit_elapsed)
                        succeeded.append(submitted.json()["id"])
                    else:
                        failures.append(f"submit {submitted.status_code}")

        if args.mode == "web":
            threads = [threading.Thread(target=web_annotator, args=(i, i)) for i in range(len(tokens))]
            for thread in threads:
                thread.start()
            logged_in.wait(timeout=600)
            clock["stop_at"] = time.monotonic() + args.seconds
            began = time.monotonic()
            go.set()
        else:
            began = time.monotonic()
            threads = [threading.Thread(target=annotator, args=(t, i)) for i, t in enumerate(tokens)]
            for thread in threads:
                thread.start()
        if args.arrival_rate:
            rng = random.Random(1)
            due = time.perf_counter()
            while time.monotonic() < clock["stop_at"]:
                due += rng.expovariate(args.arrival_rate)
                time.sleep(max(0.0, due - time.perf_counter()))
                tickets.put(due)
            for _ in threads:
                tickets.put(None)
        for thread in threads:
            thread.join()
        wall = time.monotonic() - began
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)

    if args.mode == "web":
        # The web path learns assignment ids, not annotation ids.
        stored = set(Annotation.objects.filter(pair__project=project).values_list("assignment_id", flat=True))
    else:
        stored = set(Annotation.objects.filter(pair__project=project).values_list("id", flat=True))
    lost = len(set(succeeded) - stored)
    over = Annotation.objects.filter(is_retest=False).values("pair").annotate(n=Count("id")).filter(n__gt=3).count()
    twice = Annotation.objects.values("pair", "annotator").annotate(n=Count("id")).filter(n__gt=1).count()
    loop = f"open loop at {args.arrival_rate:g} submits/s" if args.arrival_rate else "closed loop"
    print(
        f"server: gunicorn {args.workers} workers x {args.threads} threads, PostgreSQL; {args.annotators} annotators, "
        f"{wall:.0f} s; {args.mode} path{' with a tool panel per pair' if args.panels else ''}, {loop}"
    )
    if args.mode == "api":
        print(
            f"next-pair latency: p50 {percentile(next_ms, 0.5):.1f} ms, p95 {percentile(next_ms, 0.95):.1f} ms ({len(next_ms)} requests)"
        )
        print(f"submit latency:    p50 {percentile(submit_ms, 0.5):.1f} ms, p95 {percentile(submit_ms, 0.95):.1f} ms")
    else:
        print(
            f"submit-and-next latency: p50 {percentile(submit_ms, 0.5):.1f} ms, p95 {percentile(submit_ms, 0.95):.1f} ms "
            f"({len(submit_ms)} pairs{'; the panel request is not timed' if args.panels else ''})"
        )
    print(f"submits/s: {len(succeeded) / wall:.1f}  (mean {statistics.mean(submit_ms) if submit_ms else 0:.1f} ms)")
    print(f"failed requests: {len(failures)} {sorted(set(failures))[:5]}")
    print(f"lost labels: {lost}; pairs over N: {over}; annotator twice on a pair: {twice}")
    if lost or over or twice:
        sys.exit(1)


def queries_per_pair(project: object, *, panels: bool) -> str:
    """SQL per pair on the web path, counted in-process with Django's test client (same views, same DB).

    A throwaway annotator opens the labelling page, then submits three pairs (htmx submit-and-next),
    and opens each tool panel once. Transaction control (BEGIN/COMMIT) is counted apart.
    """
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from annotation.services import user_create

    user = user_create(username="bench-counter", password=PASSWORD, roles=["annotator"])
    project.members.add(user)  # type: ignore[attr-defined]
    client = Client()
    client.force_login(user)
    url = reverse("annotation:pair-label", args=[project.pk])  # type: ignore[attr-defined]
    html = client.get(url).content.decode()
    counts: list[tuple[int, int]] = []
    for _ in range(3):
        assignment = ASSIGNMENT_RE.search(html)
        assert assignment, "no pair for the query counter"
        body = {
            "assignment": assignment.group(1),
            "preference": "LEFT_CLEARLY",
            "task_category": project.taxonomy[0],  # type: ignore[attr-defined]
            "objectivity": "factual",
            "controversiality": "low",
            "rationale": "counting queries",
            "time_spent_ms": 1000,
        }
        with CaptureQueriesContext(connection) as ctx:
            html = client.post(url, body, HTTP_HX_REQUEST="true").content.decode()
        sql = [q["sql"] for q in ctx.captured_queries]
        control = sum(1 for q in sql if q.split(None, 1)[0].upper() in TRANSACTION_CONTROL)
        counts.append((len(sql) - control, control))
    lines = [f"queries per pair, submit-and-next: {max(c for c, _ in counts)} SQL (+{counts[-1][1]} BEGIN/COMMIT)"]
    if panels:
        pair_id = int(re.search(r"pair #(\d+)", html).group(1))  # type: ignore[union-attr]
        for name, url_name in (("search", "search"), ("code", "code"), ("evidence", "pair-evidence")):
            panel = reverse(f"annotation:tools:{url_name}", args=[pair_id])
            with CaptureQueriesContext(connection) as ctx:
                client.get(panel, HTTP_HX_REQUEST="true")
            lines.append(f"  + {name} panel when its tab is opened: {len(ctx.captured_queries)} SQL")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
