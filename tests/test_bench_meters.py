"""The benchmarks' CPU meters find a process's children as /proc's parent links name them."""

import os
import subprocess
import sys

from bench.proc_cpu import _children_by_scan, children_of, cpu_seconds, descendants_of


def test_children_are_those_proc_names_with_this_parent() -> None:
    started = [
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) for _ in range(3)
    ]
    try:
        found = children_of(os.getpid())
        assert {p.pid for p in started} <= set(found)
        assert sorted(found) == sorted(_children_by_scan(os.getpid()))
        assert all(cpu_seconds(pid) >= 0.0 for pid in found)
    finally:
        for process in started:
            process.kill()
            process.wait()
    assert not {p.pid for p in started} & set(children_of(os.getpid()))


def test_a_process_gone_has_no_children() -> None:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    assert children_of(process.pid) == []


def test_descendants_are_children_and_theirs() -> None:
    """A fork server's forks count with the service that started the server."""
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time; "
            "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)']); "
            "print('started', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None and parent.stdout.readline().strip() == "started"
        (grandchild,) = children_of(parent.pid)
        assert descendants_of(os.getpid()).count(grandchild) == 1
        assert parent.pid in descendants_of(os.getpid())
    finally:
        for pid in children_of(parent.pid):
            os.kill(pid, 9)
        parent.kill()
        parent.wait()
