"""`cnnlab data`: listing, fetch without the files, show."""

from __future__ import annotations

import dataclasses

import pytest

from cnnlab.cli import main
from cnnlab.data import sources


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("CNNLAB_DATA", raising=False)
    monkeypatch.setenv("CNNLAB_NO_DOWNLOAD", "1")
    for name, spec in list(sources.SOURCES.items()):
        monkeypatch.setitem(sources.SOURCES, name,
                            dataclasses.replace(spec, system_dirs=(str(tmp_path / "sys"),)))


def test_list_says_missing_and_how_to_get(capsys, tmp_path):
    assert main(["data", "--data-dir", str(tmp_path / "mine")]) == 0
    out = capsys.readouterr().out
    assert "fashion-mnist: MISSING" in out and "mnist: MISSING" in out
    assert "apt-get install dataset-fashion-mnist" in out
    assert f"--data-dir {tmp_path / 'mine'}" in out and "synthetic: available" in out
    assert "batch resize on CPU: " in out


def test_fetch_without_files_or_network_exits_2(capsys, tmp_path):
    assert main(["data", "fetch", "fashion-mnist", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    # the folder the user named is used or refused: it says what that folder lacks
    assert err.startswith(f"cnnlab: error: the data folder {tmp_path} is empty")
    assert err.count("\n") == 1
    assert "train-images-idx3-ubyte.gz" in err and "Traceback" not in err


def test_show_writes_png(capsys, tmp_path):
    out = tmp_path / "grid.png"
    assert main(["data", "show", "--dataset", "synthetic", "--n", "6", "--out", str(out),
                 "--augment", "crop,flip"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "6 train images of synthetic" in capsys.readouterr().out
    assert main(["data", "show", "--dataset", "synthetic", "--n", "0"]) == 2
