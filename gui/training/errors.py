"""What the error dialog says when a run fails: what happened, and what to try."""

from __future__ import annotations

from typing import Any

TITLES = {
    "nan": "Training stopped: the loss is no longer a number",
    "oom": "Training ran out of memory",
    "data": "The data does not fit the model",
    "died": "The training process ended unexpectedly",
    "config": "The run cannot start with these settings",
    "internal": "Training failed",
    "cluster": "The cluster run stopped",
}


def error_text(event: dict[str, Any], run_dir: Any = None) -> tuple[str, str]:
    """The dialog's title and text for an ``error`` event of the training engine.

    Args:
        event: The event (``kind``, ``message``, ``hint``).
        run_dir: The run's folder, named in the text when given.

    Returns:
        ``(title, text)``: the title says what kind of failure it was, the text
        gives the engine's message and then what to try. The project is untouched.
    """
    kind = str(event.get("kind") or "internal")
    title = TITLES.get(kind, TITLES["internal"])
    message = str(event.get("message") or "the run ended with an error").strip()
    hint = str(event.get("hint") or "").strip()
    parts = [message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")]
    if hint:
        parts.append(f"What to try: {hint}")
    if run_dir is not None:
        parts.append(f"The run's files are in {run_dir}.")
    parts.append("Your project is unchanged.")
    return title, "\n\n".join(parts)


def status_text(event: dict[str, Any]) -> str:
    """A one-line summary of an ``error`` event for the status bar and the log."""
    return f"Training failed: {str(event.get('message') or 'unknown error')}"
