"""The cluster dialog: train across several machines from the window.

The user lists every worker's ``host:port`` (this machine is worker 0, the chief),
the global batch size and the timeouts. The dialog shows, live, the exact command
to start on each other machine (:func:`engine.train.cluster.worker_commands` with the
saved project file, which the other machines need), with a Copy button, and the
problems :func:`engine.train.cluster.cluster_problems` finds. Its result is the
training section's ``cluster`` object::

    dialog = ClusterDialog(project.training, project.path, parent)
    if dialog.exec():
        section["cluster"] = dialog.cluster()
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from PySide6.QtGui import QFontDatabase, QGuiApplication, QTextOption
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine.model.project import load_project
from engine.train.cluster import (
    DEFAULT_JOIN_TIMEOUT_S,
    DEFAULT_TIMEOUT_S,
    ClusterError,
    cluster_problems,
    free_ports,
    parse_cluster,
    worker_commands,
)

UNSAVED = (
    "Save the project first: every other machine reads the project file, so it "
    "must exist on disk (copy it and its data files there, at the same place)."
)
ERROR_STYLE = "color: #dc2626;"
MUTED_STYLE = "color: gray;"


def free_local_addresses(n: int) -> list[str]:
    """``n`` addresses ``localhost:PORT`` with ports that are free right now."""
    return [f"localhost:{port}" for port in free_ports(n)]


def cluster_label(cluster: Any) -> str:
    """The device combo's text for a cluster: ``Cluster (3 workers)``."""
    workers = cluster.get("workers") if isinstance(cluster, dict) else None
    n = len(workers) if isinstance(workers, list) else 0
    return f"Cluster ({n} worker{'' if n == 1 else 's'})"


class ClusterDialog(QDialog):
    """Edit a training section's ``cluster`` settings and show the workers' commands.

    Args:
        section: The project's training section (its ``cluster`` and ``batch_size``).
        project_path: The saved project file; None while the project is unsaved
            (the dialog then says to save it first and OK stays disabled).
        parent: The parent widget.

    Attributes:
        workers_edit: One ``host:port`` per line; the first is this machine.
        commands_view: The commands for the other machines (read-only).
        problems_label: What is wrong with the settings (hidden when nothing is).
    """

    def __init__(
        self,
        section: dict[str, Any],
        project_path: str | Path | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Train on several machines")
        self.setMinimumWidth(680)
        self.project_path = None if project_path is None else str(project_path)
        self.batch_size = max(1, int(section.get("batch_size", 32) or 32))
        self._updating = False
        old = section.get("cluster") if isinstance(section.get("cluster"), dict) else {}
        self._extra = {
            k: v
            for k, v in old.items()
            if k not in ("workers", "global_batch_size", "timeout_s", "join_timeout_s")
        }
        self._build()
        workers = old.get("workers") if isinstance(old.get("workers"), list) else []
        self.workers_edit.setPlainText("\n".join(str(w) for w in workers))
        gbs = old.get("global_batch_size")
        self._gbs_follows = not isinstance(gbs, int)  # follows batch size x workers
        if isinstance(gbs, int):
            self.global_batch.setValue(gbs)
        self.timeout.setValue(int(old.get("timeout_s", DEFAULT_TIMEOUT_S)))
        self.join_timeout.setValue(int(old.get("join_timeout_s", DEFAULT_JOIN_TIMEOUT_S)))
        self._connect()
        self.update_view()

    # ---------------------------------------------------------------- layout
    def _build(self) -> None:
        intro = QLabel(
            "Every machine holds a copy of the model and trains on its share of each "
            "batch; the gradients are summed at every step. <b>This machine is worker 0, "
            "the chief</b>: it shows the curves and writes the run folder."
        )
        intro.setWordWrap(True)

        self.workers_edit = QPlainTextEdit()
        self.workers_edit.setPlaceholderText("this-machine.lan:2222\nother.lan:2222\n…")
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        self.workers_edit.setFont(mono)
        self.workers_edit.setMinimumHeight(84)
        self.workers_edit.setMaximumHeight(110)
        self.workers_edit.setTabChangesFocus(True)
        self.local_button = QPushButton("Try it on this machine")
        self.local_button.setToolTip(
            "Fill in localhost with free ports, one per worker "
            "(start the other workers in terminals here)"
        )
        self.local_count = QSpinBox()
        self.local_count.setRange(2, 16)
        self.local_count.setValue(2)
        self.local_count.setSuffix(" workers")
        local_row = QHBoxLayout()
        local_row.addWidget(self.local_button)
        local_row.addWidget(self.local_count)
        local_row.addStretch(1)
        workers_box = QGroupBox("Workers (host:port, one per line, the same order everywhere)")
        v = QVBoxLayout(workers_box)
        v.addWidget(self.workers_edit)
        self.workers_note = QLabel("")
        self.workers_note.setStyleSheet(MUTED_STYLE)
        v.addWidget(self.workers_note)
        v.addLayout(local_row)

        self.global_batch = QSpinBox()
        self.global_batch.setRange(1, 1 << 24)
        self.global_batch.setKeyboardTracking(False)
        self.global_batch.setToolTip("Samples per optimizer step, summed over all workers")
        self.global_batch.setMaximumWidth(120)
        self.gbs_note = QLabel("")
        self.gbs_note.setStyleSheet(MUTED_STYLE)
        gbs_row = QHBoxLayout()
        gbs_row.addWidget(self.global_batch)
        gbs_row.addWidget(self.gbs_note, 1)
        self.timeout = QSpinBox()
        self.timeout.setRange(1, 24 * 3600)
        self.timeout.setSuffix(" s")
        self.timeout.setToolTip("A step waiting longer than this for another worker fails")
        self.timeout.setMaximumWidth(120)
        self.join_timeout = QSpinBox()
        self.join_timeout.setRange(1, 7 * 24 * 3600)
        self.join_timeout.setSuffix(" s")
        self.join_timeout.setToolTip("How long the chief waits for every worker to start")
        self.join_timeout.setMaximumWidth(120)
        settings = QGroupBox("Settings")
        form = QFormLayout(settings)
        form.addRow("global batch size", gbs_row)
        form.addRow("step timeout", self.timeout)
        form.addRow("wait for workers", self.join_timeout)

        self.commands_view = QPlainTextEdit()
        self.commands_view.setReadOnly(True)
        self.commands_view.setFont(mono)
        self.commands_view.setWordWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
        self.commands_view.setMinimumHeight(120)
        self.commands_view.setMaximumHeight(170)
        self.commands_view.setPlaceholderText(
            "The commands appear here once the addresses are right."
        )
        self.commands_view.setStyleSheet(
            "QPlainTextEdit { background: #f3f4f6; "
            "color: #111827; border: 1px solid #d1d5db; "
            "border-radius: 4px; padding: 4px; }"
        )
        self.commands_note = QLabel("")
        self.commands_note.setWordWrap(True)
        self.copy_button = QPushButton("Copy")
        self.copy_button.setToolTip("Copy the commands to the clipboard")
        commands_box = QGroupBox("Start on each other machine")
        v = QVBoxLayout(commands_box)
        v.addWidget(self.commands_view)
        row = QHBoxLayout()
        row.addWidget(self.commands_note, 1)
        row.addWidget(self.copy_button)
        v.addLayout(row)

        self.problems_label = QLabel("")
        self.problems_label.setWordWrap(True)
        self.problems_label.setStyleSheet(ERROR_STYLE)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText("Use this cluster")

        layout = QVBoxLayout(self)
        layout.setSpacing(10)
        layout.addWidget(intro)
        layout.addWidget(workers_box)
        layout.addWidget(settings)
        layout.addWidget(commands_box)
        layout.addWidget(self.problems_label)
        layout.addWidget(self.buttons)

    def _connect(self) -> None:
        self.workers_edit.textChanged.connect(self.update_view)
        self.global_batch.valueChanged.connect(self._on_gbs_edited)
        self.timeout.valueChanged.connect(self.update_view)
        self.join_timeout.valueChanged.connect(self.update_view)
        self.local_button.clicked.connect(self.fill_localhost)
        self.copy_button.clicked.connect(self.copy_commands)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

    # --------------------------------------------------------------- values
    def workers(self) -> list[str]:
        """The addresses as typed, blank lines left out."""
        lines = self.workers_edit.toPlainText().replace(",", "\n").splitlines()
        return [line.strip() for line in lines if line.strip()]

    def cluster(self) -> dict[str, Any]:
        """The training section's ``cluster`` object the dialog describes."""
        return {
            **self._extra,
            "workers": self.workers(),
            "global_batch_size": self.global_batch.value(),
            "timeout_s": self.timeout.value(),
            "join_timeout_s": self.join_timeout.value(),
        }

    def problems(self) -> list[str]:
        """What keeps these settings from working (empty when OK may be pressed)."""
        workers = self.workers()
        problems = [] if workers else ["list every worker's host:port, this machine first"]
        problems += [p for p in cluster_problems(self.cluster()) if workers or "no worker" not in p]
        if workers and self.global_batch.value() < len(workers):
            problems.append(
                f"the global batch size {self.global_batch.value()} is smaller "
                f"than the {len(workers)} workers (each needs a sample per step)"
            )
        if self.project_path is None:
            problems.append("the project is not saved yet")
        return problems

    def commands(self) -> list[str]:
        """The command for each other machine (empty while unsaved or invalid)."""
        if self.project_path is None:
            return []
        try:
            return worker_commands(self.project_path, parse_cluster(self.workers()), 0)
        except ClusterError:
            return []

    # --------------------------------------------------------------- updates
    def _on_gbs_edited(self) -> None:
        if not self._updating:
            self._gbs_follows = False
        self.update_view()

    def update_view(self) -> None:
        """Refresh the global batch, the commands and the problems from the fields."""
        workers = self.workers()
        n = max(1, len(workers))
        if self._gbs_follows:
            self._updating = True
            self.global_batch.setValue(self.batch_size * n)
            self._updating = False
        per = self.global_batch.value() / n
        self.gbs_note.setText(
            f"{per:g} samples per worker and step"
            + (f" (batch size {self.batch_size} × {n} workers)" if self._gbs_follows else "")
        )
        self.workers_note.setText(
            f"{workers[0]} is this machine (the chief); "
            f"{len(workers) - 1} other machine{'' if len(workers) == 2 else 's'}"
            if workers
            else "The first line is this machine (the chief)."
        )
        if self.project_path is None:
            self.commands_view.setPlainText("")
            self.commands_view.setPlaceholderText(
                "The commands appear here once the project is saved."
            )
            self.commands_note.setText(UNSAVED)
            self.commands_note.setStyleSheet(ERROR_STYLE)
        else:
            commands = self.commands()
            self.commands_view.setPlainText(
                "\n".join(f"# on {workers[i]} (worker {i})\n{c}" for i, c in enumerate(commands, 1))
            )
            if commands:
                note = (
                    "Run these in any order, before or after pressing Train; training "
                    "starts once every worker has joined."
                )
            elif len(workers) == 1:
                note = "A cluster of one worker trains on this machine alone."
            else:
                note = "The commands appear once the addresses are right."
            self.commands_note.setText(note)
            self.commands_note.setStyleSheet(MUTED_STYLE)
        self.copy_button.setEnabled(bool(self.commands()))
        self.copy_button.setText("Copy")
        problems = self.problems()
        shown = [p for p in problems if p != "the project is not saved yet"]
        self.problems_label.setText("\n".join(f"• {p}" for p in shown))
        self.problems_label.setVisible(bool(shown))
        self.ok_button.setEnabled(not problems)

    def fill_localhost(self) -> None:
        """List ``localhost`` with free ports (to try a cluster on one machine)."""
        n = max(self.local_count.value(), 2)
        self.workers_edit.setPlainText("\n".join(free_local_addresses(n)))

    def copy_commands(self) -> None:
        """Put the other machines' commands on the clipboard."""
        text = "\n".join(self.commands())
        if text:
            QGuiApplication.clipboard().setText(text)
            self.copy_button.setText("Copied")


def main() -> None:
    """``python -m gui.training.cluster_dialog [project.json]``: the dialog on its own."""
    app = QApplication(sys.argv[:1])
    project = load_project(sys.argv[1]) if len(sys.argv) > 1 else None
    dialog = ClusterDialog(
        project.training if project else {"batch_size": 32}, project.path if project else None
    )
    dialog.show()
    app.exec()


if __name__ == "__main__":
    main()
