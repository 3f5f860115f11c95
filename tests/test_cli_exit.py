"""The program ends with os._exit after the interpreter's shutdown steps that matter (cli._end_process)."""

from __future__ import annotations

import json
import subprocess
import sys

_PROGRAM = """
import atexit, sys, threading
from atleus_dist import cli
ending = threading.Event()    # the command is done: the process has begun to end
exiting = threading.Event()   # the atexit handlers run
def handler():
    exiting.set()
    sys.stderr.write("atexit ran\\n")
atexit.register(handler)
def late():
    # alive until the command is done, whatever it takes (no sleep to outlive it); then it waits
    # for the atexit handlers a little: a process that waits for its threads first runs them only
    # after this thread has written its line, one that does not wakes it to write it too late
    ending.wait()
    exiting.wait(0.5)
    sys.stderr.write("thread finished\\n")
threading.Thread(target=late).start()  # non-daemon: the interpreter would wait for it
end_process = cli._end_process
def _end(code):
    ending.set()
    end_process(code)
cli._end_process = _end
sys.argv = ["atleus-dist"] + sys.argv[1:]
try:
    cli.main()
finally:  # argparse's SystemExit skips _end_process: the interpreter's own exit ends the run
    ending.set()
sys.stderr.write("main returned\\n")
"""


def _program(*args):
    return subprocess.run([sys.executable, "-c", _PROGRAM, *args], capture_output=True, text=True, timeout=120)


def _ended_like_python(stderr: str) -> list[str]:
    """The lines other than the shutdown's own, after checking those: the thread was waited for,
    then the atexit handler ran, last; main never returned."""
    lines = stderr.splitlines()
    assert lines[-1] == "atexit ran" and "main returned" not in lines
    assert lines.count("thread finished") == 1
    return [x for x in lines if x not in ("thread finished", "atexit ran")]


def test_the_program_waits_for_threads_runs_atexit_and_keeps_its_output_and_code(tmp_path):
    r = _program("components", "--json")
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)) > 50  # the whole document, flushed before the process ended
    assert _ended_like_python(r.stderr) == []
    bad = _program("noc", "--mesh", "9x9", "--out", str(tmp_path / "x"))  # a ConfigError: main's code 2
    assert bad.returncode == 2
    [err] = _ended_like_python(bad.stderr)
    assert err.startswith("atleus-dist noc: error: argument --mesh")
    usage = _program("noc")  # argparse's SystemExit leaves main as before: the interpreter's own exit
    assert usage.returncode == 2 and len(_ended_like_python(usage.stderr)) == 1


def test_main_with_arguments_returns_its_code(tmp_path):
    from atleus_dist.cli import main

    assert main(["noc", "--mesh", "9x9", "--out", str(tmp_path / "x")]) == 2
