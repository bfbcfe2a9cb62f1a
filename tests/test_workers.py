"""die_with_parent: a worker whose parent is killed dies too, instead of writing on as an orphan."""

import os
import signal
import subprocess
import sys
import time

import pytest

# The parent starts a child that calls die_with_parent (or not), prints the child's pid, then waits forever.
PARENT = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", {child!r}])
print(child.pid, flush=True)
time.sleep(600)
"""
CHILD = "import time\n{call}\ntime.sleep(600)\n"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie (dead, not yet reaped by init) counts as dead
        return f.read().split(")")[-1].split()[0] != "Z"


def child_after_parent_killed(call: str) -> bool:
    code = PARENT.format(child=CHILD.format(call=call))
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    time.sleep(1.0)  # the child has imported and called die_with_parent
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    survived = alive(child)
    if survived:
        os.kill(child, signal.SIGKILL)
    return survived


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_worker_dies_with_its_parent():
    assert not child_after_parent_killed("from ganfactory.workers import die_with_parent; die_with_parent()")
    assert child_after_parent_killed("pass")  # without it the orphan lives on: the test can fail
