"""The run lock dies with its owner, whatever the owner's forked workers do.

Protects: a loader worker that outlives a ``kill -9``-ed run no longer holds the run folder's lock (the
next run was refused, naming the dead PID).
"""

import os
import signal
import subprocess
import sys
import time

import pytest
from softlabelseg.engine.run_lock import RunFolderBusy, RunLock

OWNER = """
import multiprocessing as mp, os, signal, sys, time
from softlabelseg.engine.run_lock import RunLock

def worker():
    time.sleep(60)

lock = RunLock(sys.argv[1]).acquire()
child = mp.get_context("fork").Process(target=worker, daemon=False)
child.start()
with open(sys.argv[2], "w") as f:
    f.write(str(child.pid))
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_killed_owner_releases_the_lock_while_its_worker_lives(tmp_path):
    pid_file = tmp_path / "worker.pid"
    run = subprocess.run([sys.executable, "-c", OWNER, str(tmp_path / "run"), str(pid_file)], timeout=120)
    assert run.returncode == -signal.SIGKILL
    worker = int(pid_file.read_text())
    try:
        os.kill(worker, 0)  # the orphaned worker is still alive
        lock = RunLock(str(tmp_path / "run")).acquire()  # refused (RunFolderBusy) while the worker held it
        lock.release()
    finally:
        os.kill(worker, signal.SIGKILL)


def test_a_live_owner_still_refuses_a_second_run(tmp_path):
    lock = RunLock(str(tmp_path)).acquire()
    try:
        child = os.fork()
        if child == 0:  # a forked worker of the owner: it must not count as a second holder, nor free it
            time.sleep(0.5)
            os._exit(0)
        other = os.open(os.path.join(tmp_path, ".softlabelseg.lock"), os.O_RDWR)
        os.close(other)
        with pytest.raises(RunFolderBusy, match=f"PID {os.getpid()}"):
            RunLock(str(tmp_path)).acquire()
        os.waitpid(child, 0)
        with pytest.raises(RunFolderBusy):
            RunLock(str(tmp_path)).acquire()
    finally:
        lock.release()
    RunLock(str(tmp_path)).acquire().release()
