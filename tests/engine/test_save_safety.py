"""Saving a project loses nothing: modes, symlinks, read-only files, full disks, outside changes."""

import errno
import os
import stat
import subprocess
import uuid

import pytest

from engine.files import FileWriteError, changed_on_disk
from engine.model.project import load_project, new_project, save_project


def names(folder):
    return sorted(f.name for f in folder.iterdir())


def test_save_keeps_the_mode_of_the_existing_file(tmp_path):
    path = tmp_path / "p.json"
    save_project(new_project("a"), path)
    path.chmod(0o664)
    save_project(new_project("b"), path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o664


def test_a_new_project_file_is_not_private(tmp_path):
    old = os.umask(0o022)
    try:
        save_project(new_project("a"), tmp_path / "p.json")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "p.json").stat().st_mode) == 0o644


def test_save_through_a_symlink_keeps_the_link(tmp_path):
    real = tmp_path / "store" / "p.json"
    real.parent.mkdir()
    save_project(new_project("a"), real)
    link = tmp_path / "p.json"
    link.symlink_to(real)
    save_project(new_project("b"), link)
    assert link.is_symlink()
    assert load_project(real).name == "b"


def test_save_refuses_a_read_only_file_by_name(tmp_path):
    path = tmp_path / "p.json"
    save_project(new_project("a"), path)
    path.chmod(0o444)
    with pytest.raises(FileWriteError, match=r"p\.json: is read-only"):
        save_project(new_project("b"), path)
    assert load_project(path).name == "a"
    assert names(tmp_path) == ["p.json"]


def _big_project():
    project = new_project("big")
    project.description = "x" * 200_000
    return project


def test_a_full_disk_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "p.json"
    save_project(new_project("a"), path)
    before = path.read_bytes()
    real_write = os.write

    def full(fd, data):
        if len(data) > 1000:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(OSError) as info:
        save_project(_big_project(), path)
    assert info.value.errno == errno.ENOSPC
    assert path.read_bytes() == before
    assert names(tmp_path) == ["p.json"]


@pytest.fixture
def tiny_disk(tmp_path):
    """A 64 KB tmpfs (needs root and mount; skipped elsewhere)."""
    folder = tmp_path / f"tiny-{uuid.uuid4().hex[:6]}"
    folder.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace')}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def test_a_really_full_disk_keeps_the_old_file_and_leaves_no_temp(tiny_disk):
    path = tiny_disk / "p.json"
    save_project(new_project("a"), path)
    before = path.read_bytes()
    with pytest.raises(OSError) as info:
        save_project(_big_project(), path)
    assert info.value.errno == errno.ENOSPC
    assert path.read_bytes() == before
    assert names(tiny_disk) == ["p.json"]


def test_load_and_save_record_the_file_on_disk(tmp_path):
    path = tmp_path / "p.json"
    project = new_project("a")
    assert changed_on_disk(project) is None  # never saved
    save_project(project, path)
    assert project.disk_state is not None
    assert changed_on_disk(project) is None
    loaded = load_project(path)
    assert loaded.disk_state.sha256 == project.disk_state.sha256

    other = load_project(path)  # another window saves the same file
    other.name = "changed elsewhere"
    save_project(other, path)
    assert "changed on disk" in changed_on_disk(loaded)
    assert changed_on_disk(other) is None
