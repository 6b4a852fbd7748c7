"""The deployment files say what the design says: services, queues, GPU reservation, every env var documented."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_compose_has_the_services_and_a_gpu_worker_on_its_queue() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"db", "redis", "web", "worker", "gpu-worker"} <= set(services)
    gpu = services["gpu-worker"]
    command = gpu["command"]
    assert command[command.index("-Q") + 1] == "gpu" and command[command.index("--concurrency") + 1] == "1"
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    assert "gpu" not in services["worker"]["command"][services["worker"]["command"].index("-Q") + 1].split(",")


def test_every_environment_variable_read_by_settings_is_in_env_example() -> None:
    settings_text = (ROOT / "config" / "settings.py").read_text()
    read = set(re.findall(r'env_(?:str|bool|int|float|secret)\("([A-Z_]+)"', settings_text))
    documented = set(re.findall(r"^#?\s*([A-Z_]+)=", (ROOT / ".env.example").read_text(), flags=re.M))
    assert read - documented == set()
