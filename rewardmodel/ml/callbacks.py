"""The small callback protocol through which the Django app watches (and can cancel) training and scoring.

A callback is any object with an ``on_log`` method; ``on_eval``, ``on_save`` and ``on_train_end`` are optional.
Callbacks run on the main process only (rank 0 under torchrun); a cancel decided there is broadcast to all ranks.

``on_log(step, total_steps, metrics)`` is called every ``logging_steps`` optimizer steps with ``metrics`` holding
``loss``, ``accuracy``, ``mean_margin``, ``lr``, ``grad_norm``, ``epoch`` (fractional), ``num_tokens`` (non-pad
tokens this step, all ranks) and ``tokens_per_second``. Returning ``False`` cancels the run: the trainer saves a
resumable checkpoint and raises :class:`TrainingCancelled`. Raising :class:`TrainingCancelled` from a callback does
the same. Any other exception propagates unchanged (a crash; the run resumes from the last periodic checkpoint).

A Celery task typically passes one callback that writes curve points and progress to the TrainingJob row and
returns ``not job.cancel_requested``.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


class Cancelled(Exception):
    """Base class: the work was cancelled through a callback."""


class TrainingCancelled(Cancelled):
    """Training stopped because a callback asked it to; a checkpoint was saved first (``checkpoint`` attribute)."""

    def __init__(self, step: int, checkpoint: str | None = None) -> None:
        super().__init__(f"training cancelled at step {step}")
        self.step = step
        self.checkpoint = checkpoint


class ScoringCancelled(Cancelled):
    """Bulk scoring stopped because the progress callback returned False; the output so far is complete lines."""


@runtime_checkable
class TrainingCallback(Protocol):
    """What ``train`` needs from a callback; only ``on_log`` is required."""

    def on_log(self, step: int, total_steps: int, metrics: dict[str, float]) -> bool | None:
        """Per-step metrics; return False to cancel."""
        ...


class TrainerCallback:
    """Convenience base class with no-op hooks; override what you need."""

    def on_log(self, step: int, total_steps: int, metrics: dict[str, float]) -> bool | None:
        """Called every ``logging_steps`` optimizer steps; return False to cancel."""
        return None

    def on_eval(self, step: int, metrics: dict[str, Any]) -> bool | None:
        """Called after each evaluation with :func:`rewardmodel.ml.evaluate.evaluate_scores` output plus ``is_best``;
        return False to cancel."""
        return None

    def on_save(self, step: int, path: str, kind: str) -> None:
        """Called after a save; ``kind`` is ``checkpoint``, ``best`` or ``final``."""
        return None

    def on_train_end(self, step: int, result: Any) -> None:
        """Called once after the final save with the :class:`rewardmodel.ml.train.TrainResult`."""
        return None


class PrintCallback(TrainerCallback):
    """Prints one JSON line per log / eval / save event (the CLI's default)."""

    def on_log(self, step: int, total_steps: int, metrics: dict[str, float]) -> bool | None:
        """Print ``{"step", "total_steps", **metrics}``."""
        import json

        print(json.dumps({"event": "log", "step": step, "total_steps": total_steps, **metrics}), flush=True)
        return None

    def on_eval(self, step: int, metrics: dict[str, Any]) -> bool | None:
        """Print the evaluation summary (without the per-subset breakdown's details)."""
        import json

        print(json.dumps({"event": "eval", "step": step, **metrics}, default=str), flush=True)
        return None

    def on_save(self, step: int, path: str, kind: str) -> None:
        """Print where a checkpoint went."""
        import json

        print(json.dumps({"event": "save", "step": step, "kind": kind, "path": path}), flush=True)


class EventsFileCallback(TrainerCallback):
    """Appends one JSON line per log / eval / save event to ``events_path`` and cancels when ``cancel_path`` exists.

    How a parent process follows a run it launched as a process group (``rewardmodel.ml.launch``): rank 0 writes
    (callbacks run on rank 0 only), the parent tails the file, and asks for a cancel by creating the cancel file;
    the trainer then saves a checkpoint on every rank and stops.
    """

    def __init__(self, events_path: str, cancel_path: str | None = None) -> None:
        self.events_path = events_path
        self.cancel_path = cancel_path

    def write(self, event: dict[str, Any]) -> None:
        """Append one event as a complete line (flushed, so a reader never sees half a line for long)."""
        import json

        with open(self.events_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(event, default=str) + "\n")
            handle.flush()

    def _cancelled(self) -> bool:
        import os

        return bool(self.cancel_path) and os.path.exists(str(self.cancel_path))

    def on_log(self, step: int, total_steps: int, metrics: dict[str, float]) -> bool | None:
        """Write ``{"event": "log", "step", "total_steps", **metrics}``; False when a cancel was asked for."""
        self.write({"event": "log", "step": step, "total_steps": total_steps, **metrics})
        return False if self._cancelled() else None

    def on_eval(self, step: int, metrics: dict[str, Any]) -> bool | None:
        """Write the evaluation metrics (``None`` on runs without eval records)."""
        self.write({"event": "eval", "step": step, "metrics": metrics})
        return False if self._cancelled() else None

    def on_save(self, step: int, path: str, kind: str) -> None:
        """Write where a checkpoint went."""
        self.write({"event": "save", "step": step, "kind": kind, "path": path})
