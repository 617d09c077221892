"""Saving a project loses nothing: modes, symlinks, read-only files, full disks, outside changes."""

import errno
import json
import os
import re
import shutil
import stat
import subprocess
import uuid

import pytest

from engine.build.weights import GRAPH_KEY, WeightsRefused, carry_weights
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


# --------------------------------------------------------------------------- weights on Save


def _layerlab_weights(path, graph=None):
    """An HDF5 file as LayerLab's import writes it: weights and the graph as imported."""
    import h5py

    with h5py.File(path, "w") as f:
        f.create_dataset("layers/dense/vars/0", data=[[1.0, 2.0]])
        f.create_dataset(GRAPH_KEY, data=json.dumps(graph or {"nodes": [], "edges": []}))
    return path


def _imported(tmp_path, weights):
    project = new_project("imported")
    project.extra["weights"] = str(weights)
    project.path = tmp_path / "first" / "p.json"
    return project


@pytest.mark.parametrize("named", ["absolute", "relative"])
def test_save_never_copies_a_private_file_a_project_names(tmp_path, named):
    secret = tmp_path / "home" / ".ssh" / "id_rsa"
    secret.parent.mkdir(parents=True)
    secret.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    (tmp_path / "home" / "proj").mkdir()
    project = new_project("received")
    project.path = tmp_path / "home" / "proj" / "received.json"
    project.extra["weights"] = str(secret) if named == "absolute" else "../.ssh/id_rsa"
    out = tmp_path / "repo"
    out.mkdir()
    with pytest.raises(WeightsRefused, match=re.escape(str(secret))) as info:
        carry_weights(project, out / "received.json")
    assert "not an HDF5 weights file" in str(info.value)
    assert isinstance(info.value, OSError)  # a failed save to the window's handler
    assert names(out) == []
    assert project.extra["weights"] != "received.weights.h5"


def test_save_refuses_an_hdf5_file_that_layerlab_did_not_write(tmp_path):
    import h5py

    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.create_dataset("data", data=[1, 2, 3])
    project = _imported(tmp_path, other)
    (tmp_path / "out").mkdir()
    with pytest.raises(WeightsRefused, match="no graph stored by LayerLab's import"):
        carry_weights(project, tmp_path / "out" / "p.json")
    assert names(tmp_path / "out") == []


def test_save_refuses_a_weights_symlink_to_another_file(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("password")
    link = tmp_path / "src" / "x.weights.h5"
    link.parent.mkdir()
    link.symlink_to(secret)
    (tmp_path / "out").mkdir()
    with pytest.raises(WeightsRefused, match="not an HDF5 weights file"):
        carry_weights(_imported(tmp_path, link), tmp_path / "out" / "p.json")
    assert names(tmp_path / "out") == []


def test_save_copies_layerlab_weights_keeping_their_mode(tmp_path):
    source = _layerlab_weights(tmp_path / "import.weights.h5")
    source.chmod(0o640)
    project = _imported(tmp_path, source)
    (tmp_path / "saved").mkdir()
    target = carry_weights(project, tmp_path / "saved" / "p.json")
    assert target == tmp_path / "saved" / "p.weights.h5"
    assert target.read_bytes() == source.read_bytes()
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert project.extra["weights"] == "p.weights.h5"
    assert names(tmp_path / "saved") == ["p.weights.h5"]


def test_a_failed_weights_copy_keeps_the_existing_weights_file(tmp_path, monkeypatch):
    source = _layerlab_weights(tmp_path / "import.weights.h5")
    (tmp_path / "saved").mkdir()
    existing = tmp_path / "saved" / "p.weights.h5"
    existing.write_bytes(b"the weights saved before")

    def full(src, dst, length=0):
        dst.write(src.read(10))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shutil, "copyfileobj", full)
    with pytest.raises(OSError) as info:
        carry_weights(_imported(tmp_path, source), tmp_path / "saved" / "p.json")
    assert info.value.errno == errno.ENOSPC
    assert existing.read_bytes() == b"the weights saved before"
    assert names(tmp_path / "saved") == ["p.weights.h5"]


def test_a_weights_copy_onto_a_really_full_disk_keeps_the_existing_file(tmp_path, tiny_disk):
    source = tmp_path / "import.weights.h5"
    _layerlab_weights(source)
    with open(source, "ab") as f:
        f.write(os.urandom(100_000))  # HDF5 ignores bytes past its end
    existing = tiny_disk / "p.weights.h5"
    existing.write_bytes(b"the weights saved before")
    with pytest.raises(OSError) as info:
        carry_weights(_imported(tmp_path, source), tiny_disk / "p.json")
    assert info.value.errno == errno.ENOSPC
    assert existing.read_bytes() == b"the weights saved before"
    assert names(tiny_disk) == ["p.weights.h5"]
