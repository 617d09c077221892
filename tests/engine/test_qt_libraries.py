"""The launcher names the system libraries Qt's X11 plugin lacks, instead of Qt aborting."""

import sys

from engine.cli import qt_libraries, window

LDD = """\
\tlinux-vdso.so.1 (0x00007ffd)
\tlibQt6XcbQpa.so.6 => /x/libQt6XcbQpa.so.6 (0x00007f)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-keysyms.so.1 => not found
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)
"""


def test_qt_libraries_reads_what_ldd_cannot_find():
    assert qt_libraries.not_found(LDD) == ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"]


def test_qt_libraries_names_the_debian_packages():
    assert qt_libraries.debian_package("libxcb-cursor.so.0") == "libxcb-cursor0"
    assert qt_libraries.debian_package("libxcb-icccm.so.4") == "libxcb-icccm4"
    assert qt_libraries.debian_package("libxkbcommon-x11.so.0") == "libxkbcommon-x11-0"


def test_qt_libraries_xcb_is_chosen_by_display_or_platform(monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DISPLAY", ":0")
    assert qt_libraries.uses_xcb()
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert not qt_libraries.uses_xcb()
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    assert qt_libraries.uses_xcb()


def test_launcher_refuses_with_the_install_command_before_qt_starts(monkeypatch, capsys):
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setattr(
        window, "missing_libraries", lambda: ["libxcb-cursor.so.0", "libxcb-icccm.so.4"]
    )
    monkeypatch.setattr(window, "_gui_app", lambda: (_ for _ in ()).throw(AssertionError))
    assert window.open_window(None) == 2
    err = capsys.readouterr().err
    assert "sudo apt-get install libxcb-cursor0 libxcb-icccm4" in err
    assert "libxcb-icccm.so.4" in err
