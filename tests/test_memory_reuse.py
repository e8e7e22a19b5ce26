"""`reuse_freed_memory`: once a repeated computation has run a few times, its activations reuse
freed memory instead of faulting fresh pages in."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sam2rl.cli import main

# An MLP step like the memory attention's (32 MiB activations), run 6 times; prints the page
# faults of the last run.
LAST_STEP_FAULTS = """
import resource, sys, torch
from sam2rl.memory_reuse import freed_memory_reused, reuse_freed_memory
applied = reuse_freed_memory() if sys.argv[1] == "reuse" else freed_memory_reused()
weight = torch.randn(256, 2048)
for _ in range(6):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    out = (torch.randn(4096, 256) @ weight).relu() @ weight.t()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    del out
print(applied, faults)
"""


def _last_step(mode: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", LAST_STEP_FAULTS, mode], capture_output=True, text=True,
                         check=True).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator is Linux's")
def test_repeated_steps_stop_faulting_pages_in():
    applied, faults_reused = _last_step("reuse")
    untouched, faults_default = _last_step("default")
    activation_pages = (32 << 20) // 4096
    assert applied == "True" and untouched == "False"  # importing the module alone changes nothing
    assert faults_default > activation_pages  # glibc handed the activations back: they fault in again
    assert faults_reused < activation_pages // 20


def test_the_commands_keep_freed_memory_and_main_leaves_its_host_alone(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    command = Path(sys.executable).parent / "sam2rl"  # the installed console script
    subprocess.run([str(command), "bench", "--model", "nano", "--image-size", "64", "--batch", "1", "--frames", "3",
                    "--steps", "1", "--json", str(out)], capture_output=True, check=True)
    assert json.loads(out.read_text())[0]["freed_memory_reused"] is (sys.platform.startswith("linux"))
    assert main(["bench", "--model", "nano", "--image-size", "64", "--batch", "1", "--frames", "3", "--steps", "1",
                 "--json", str(out)]) == 0
    assert json.loads(out.read_text())[0]["freed_memory_reused"] is False


# Every other 1 MiB block of 256 freed (holes the heap cannot trim from its top), then released;
# prints the resident set before the frees, after them and after the release, in MiB.
SCATTERED_HOLES = """
import os, torch
from sam2rl.memory_reuse import release_free_memory, reuse_freed_memory
def rss():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
reuse_freed_memory()
blocks = [torch.ones(2**18) for _ in range(256)]  # 1 MiB each, touched, in the heap
before = rss()
del blocks[::2]
freed = rss()
print(before, freed, rss() if release_free_memory() else freed)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator is Linux's")
def test_release_hands_back_free_holes_the_heap_keeps():
    out = subprocess.run([sys.executable, "-c", SCATTERED_HOLES], capture_output=True, text=True, check=True)
    before, freed, released = map(float, out.stdout.split())
    assert before - freed < 16  # the holes stay resident: the heap keeps them for reuse
    assert freed - released > 100  # most of the 128 MiB freed goes back
