"""Annotation serving under load, as in production: gunicorn + PostgreSQL, 50 concurrent annotators.

    .venv/bin/python bench/serve_bench.py [--annotators 50] [--seconds 60] [--workers 4] [--threads 4]

Each simulated annotator loops: POST /api/projects/<id>/next/ then POST /api/assignments/<id>/submit/
with a random label, over token auth. Prints next/submit latency p50/p95 and submits/s, then checks
the database: every submit the clients saw succeed is stored (lost = 0), and no pair has more than
N regular labels, and no annotator two labels on one pair (double-assigned = 0).
"""

from __future__ import annotations

import argparse
import os
import random
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
        user = user_create(username=f"ann{i:03d}", password="bench-password-1", roles=[Role.ANNOTATOR.value])
        project.members.add(user)
        tokens.append(Token.objects.create(user=user).key)

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
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{base}/accounts/login/", timeout=5)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)

        next_ms: list[float] = []
        submit_ms: list[float] = []
        succeeded: list[int] = []
        failures: list[str] = []
        lock = threading.Lock()
        stop_at = time.monotonic() + args.seconds

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

        began = time.monotonic()
        threads = [threading.Thread(target=annotator, args=(t, i)) for i, t in enumerate(tokens)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.monotonic() - began
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)

    stored = set(Annotation.objects.filter(pair__project=project).values_list("id", flat=True))
    lost = len(set(succeeded) - stored)
    over = Annotation.objects.filter(is_retest=False).values("pair").annotate(n=Count("id")).filter(n__gt=3).count()
    twice = Annotation.objects.values("pair", "annotator").annotate(n=Count("id")).filter(n__gt=1).count()
    print(
        f"server: gunicorn {args.workers} workers x {args.threads} threads, PostgreSQL; {args.annotators} annotators, {wall:.0f} s"
    )
    print(
        f"next-pair latency: p50 {percentile(next_ms, 0.5):.1f} ms, p95 {percentile(next_ms, 0.95):.1f} ms ({len(next_ms)} requests)"
    )
    print(f"submit latency:    p50 {percentile(submit_ms, 0.5):.1f} ms, p95 {percentile(submit_ms, 0.95):.1f} ms")
    print(f"submits/s: {len(succeeded) / wall:.1f}  (mean {statistics.mean(submit_ms) if submit_ms else 0:.1f} ms)")
    print(f"failed requests: {len(failures)} {sorted(set(failures))[:5]}")
    print(f"lost labels: {lost}; pairs over N: {over}; annotator twice on a pair: {twice}")
    if lost or over or twice:
        sys.exit(1)


if __name__ == "__main__":
    main()
