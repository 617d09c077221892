"""engine.files: the one atomic-write helper, stale temp files, and changes on disk."""

import os
import stat
import threading
import time

import pytest

from engine.files import (
    TEMP_MARK,
    FileWriteError,
    LatestWrites,
    atomic_path,
    changed_on_disk,
    clean_stale_temps,
    read_state,
    write_atomic,
)


def names(folder):
    return sorted(f.name for f in folder.iterdir())


def test_write_atomic_writes_text_and_bytes(tmp_path):
    write_atomic(tmp_path / "a.txt", "héllo")
    write_atomic(tmp_path / "b.bin", b"\x00\x01")
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "héllo"
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert names(tmp_path) == ["a.txt", "b.bin"]


def test_a_new_file_gets_the_umask_mode_not_0600(tmp_path):
    old = os.umask(0o022)
    try:
        write_atomic(tmp_path / "new.json", "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.json").stat().st_mode) == 0o644


def test_an_existing_file_keeps_its_mode(tmp_path):
    path = tmp_path / "p.json"
    path.write_text("old")
    path.chmod(0o640)
    write_atomic(path, "new")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert path.read_text() == "new"


def test_a_symlink_stays_a_link_and_its_target_is_replaced(tmp_path):
    real = tmp_path / "real" / "p.json"
    real.parent.mkdir()
    real.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    write_atomic(link, "new")
    assert link.is_symlink()
    assert real.read_text() == "new"
    assert names(tmp_path) == ["link.json", "real"]
    assert names(real.parent) == ["p.json"]


def test_a_read_only_file_is_refused_by_name(tmp_path):
    path = tmp_path / "locked.json"
    path.write_text("keep me")
    path.chmod(0o444)
    with pytest.raises(FileWriteError, match="locked.json.*read-only") as info:
        write_atomic(path, "new")
    assert isinstance(info.value, OSError)
    assert path.read_text() == "keep me"
    assert names(tmp_path) == ["locked.json"]


def test_a_folder_that_allows_no_new_file_is_named(tmp_path):
    with pytest.raises(FileWriteError, match="does not exist"):
        write_atomic(tmp_path / "missing" / "p.json", "x")


@pytest.mark.parametrize("error", [OSError("boom"), KeyboardInterrupt()])
def test_a_failed_write_removes_the_temp_and_keeps_the_old_file(tmp_path, error):
    path = tmp_path / "p.json"
    path.write_text("old")
    with pytest.raises(type(error)), atomic_path(path) as tmp:
        assert tmp.parent == tmp_path and TEMP_MARK in tmp.name
        tmp.write_text("half")
        raise error
    assert path.read_text() == "old"
    assert names(tmp_path) == ["p.json"]


def test_atomic_path_keeps_a_suffix_for_writers_that_need_one(tmp_path):
    with atomic_path(tmp_path / "m.weights.h5", suffix=".weights.h5") as tmp:
        assert tmp.name.endswith(".weights.h5")
        tmp.unlink()  # writers such as h5py may replace the file they are given
        tmp.write_bytes(b"data")
    assert (tmp_path / "m.weights.h5").read_bytes() == b"data"


def test_a_long_name_still_gets_a_temp_file(tmp_path):
    path = tmp_path / ("n" * 240 + ".json")
    write_atomic(path, "x")
    assert path.read_text() == "x"


def test_clean_stale_temps_removes_old_temps_of_every_writer_only(tmp_path):
    stale = [
        f".p.json{TEMP_MARK}abc123",
        ".p.json.k2j3h4.tmp",  # engine.model.project before engine.files
        ".status.json.x9y8.tmp",  # run files
        ".recovery-x1y2.tmp",  # gui.autosave
        ".history.csv.tmp",
    ]
    keep = ["p.json", "notes.tmp", ".hidden", "p.json.tmp"]
    for name in stale + keep:
        (tmp_path / name).write_text("x")
    fresh = tmp_path / f".q.json{TEMP_MARK}zzz"
    fresh.write_text("a save in progress")
    old = time.time() - 7200
    for name in stale + keep:
        os.utime(tmp_path / name, (old, old))
    removed = clean_stale_temps(tmp_path, older_than_s=3600)
    assert sorted(p.name for p in removed) == sorted(stale)
    assert names(tmp_path) == sorted(keep + [fresh.name])


class _Doc:
    def __init__(self, path, state):
        self.path, self.disk_state = path, state


def test_changed_on_disk_goes_by_content(tmp_path):
    path = tmp_path / "p.json"
    doc = _Doc(path, write_atomic(path, "one"))
    assert changed_on_disk(doc) is None
    os.utime(path, (1, 1))  # touched: same bytes
    assert changed_on_disk(doc) is None
    path.write_text("two")
    assert "changed on disk" in changed_on_disk(doc)
    path.unlink()
    assert "deleted or moved" in changed_on_disk(doc)
    assert changed_on_disk(_Doc(None, None)) is None


def test_read_state_of_a_missing_file_is_none(tmp_path):
    assert read_state(tmp_path / "nope") is None


def test_latest_writes_skips_superseded_writes_and_waits_for_the_last(tmp_path):
    started, gate, done = threading.Event(), threading.Event(), []

    def write(n):
        if n == 0:
            started.set()
            gate.wait(5)  # the first write is slow: 1 and 2 queue up meanwhile
        write_atomic(tmp_path / "history.json", str(n))
        done.append(n)

    with LatestWrites() as writes:
        writes.submit("history", lambda: write(0))
        assert started.wait(5)
        for n in (1, 2):
            writes.submit("history", lambda n=n: write(n))
        assert not (tmp_path / "history.json").exists()  # submitting did not wait for it
        gate.set()
        writes.drain()  # a checkpoint waits so: the files hold every epoch it names
        assert (tmp_path / "history.json").read_text() == "2"
    assert done == [0, 2]  # 1 was replaced by 2 before its turn
    assert (tmp_path / "history.json").read_text() == "2"


def test_latest_writes_raises_a_failed_write_on_the_callers_thread(tmp_path):
    def fail():
        raise FileWriteError(tmp_path / "history.json", "is read-only; it was not changed")

    with pytest.raises(FileWriteError, match="history.json: is read-only"):
        with LatestWrites() as writes:
            writes.submit("history", fail)
    with pytest.raises(RuntimeError, match="training"):  # another error is not masked
        with LatestWrites() as writes:
            writes.submit("history", fail)
            raise RuntimeError("training failed")
