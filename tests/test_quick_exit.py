"""The CLI's quick exit (``cnnlab.cli.run``): what an ordinary exit does still happens.

The start-up benchmark (benchmarks/startup.py) measures what it saves.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

EXIT_SCRIPT = """
import atexit, sys, threading, time
sys.argv = ["cnnlab", "shape", "--input", "8,8", "--kernel", "3,3"]
atexit.register(lambda: print("atexit ran", flush=True))
if "--thread" in sys.orig_argv:  # a live non-daemon thread: the ordinary exit waits for it
    threading.Thread(target=lambda: (time.sleep(0.5), print("thread done", flush=True))).start()
sys.stdout.write("buffered, no newline")
from cnnlab.cli import run
run()
"""


@pytest.mark.parametrize("thread", [False, True])
def test_quick_exit_keeps_what_an_exit_does(tmp_path, thread):
    # the code, the buffered output, the atexit handlers, and a non-daemon thread's end
    script = tmp_path / "exit.py"
    script.write_text(EXIT_SCRIPT)
    out = subprocess.run([sys.executable, str(script), *(["--thread"] if thread else [])],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("buffered, no newline")
    assert "output: 6x6" in out.stdout and "atexit ran" in out.stdout
    assert ("thread done" in out.stdout) == thread


def test_quick_exit_passes_the_exit_code_on(tmp_path):
    out = subprocess.run([sys.executable, "-m", "cnnlab", "train", "lenet", "--epochs", "0x"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "--epochs" in out.stderr
