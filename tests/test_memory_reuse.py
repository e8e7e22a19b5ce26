"""`reuse_freed_memory`: once a repeated computation has run a few times, its activations reuse
freed memory instead of faulting fresh pages in; `off_heap_copy` keeps long-lived tensors out of
that heap."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sam2rl.cli import main
from sam2rl.memory_reuse import OFF_HEAP_MIN_BYTES, held_bytes, off_heap_copy

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


KEPT_FREE = """
from sam2rl.memory_reuse import kept_free_bytes, reuse_freed_memory
before = kept_free_bytes()
reuse_freed_memory(48 << 20)
print(before, kept_free_bytes())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator is Linux's")
def test_the_free_memory_kept_at_the_heap_top_follows_the_threshold_set() -> None:
    out = subprocess.run([sys.executable, "-c", KEPT_FREE], capture_output=True, text=True, check=True).stdout.split()
    assert [int(x) for x in out] == [64 << 20, 48 << 20]  # glibc's dynamic maximum, then the threshold set


def _maps() -> dict[int, int]:
    """This process's memory maps: start address -> length."""
    with open("/proc/self/maps") as maps:
        spans = [line.split()[0].split("-") for line in maps]
    return {int(a, 16): int(b, 16) - int(a, 16) for a, b in spans}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_a_large_off_heap_copy_is_a_map_of_its_own_and_goes_with_it() -> None:
    source = torch.randn(2, 64, 1024)  # 512 KiB
    copy = off_heap_copy(source)
    start = copy.untyped_storage().data_ptr()
    assert torch.equal(copy, source) and copy.is_contiguous() and copy.dtype == source.dtype
    assert _maps().get(start, 0) >= source.numel() * 4  # the copy starts a map: not a heap block
    before = held_bytes()
    del copy
    assert start not in _maps()  # unmapped with the copy
    if before is not None:
        assert abs(before - held_bytes() - source.numel() * 4) < 2**16  # no longer held (the heap moves a little)
    small = off_heap_copy(torch.ones(OFF_HEAP_MIN_BYTES // 8))  # below the threshold: a heap copy
    assert small.untyped_storage().data_ptr() not in _maps() and torch.equal(small, torch.ones(OFF_HEAP_MIN_BYTES // 8))
