"""`sam2rl bench`: what it measures and writes (figures themselves are for the README, not asserted)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
import torch
from rich.console import Console

from sam2rl.benchmark.cli import _memory_table, main
from sam2rl.benchmark.measure import PeakMemory, count_flops
from sam2rl.cli import main as sam2rl
from sam2rl.memory_reuse import freed_memory_reused, held_bytes


def test_bench_compares_naive_loop_and_environment(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out, plot = tmp_path / "bench.json", tmp_path / "sweep.png"
    assert main(["--model", "nano", "--image-size", "64", "--batch", "1", "2", "--frames", "4", "6",
                 "--steps", "2", "--json", str(out), "--plot", str(plot)]) == 0
    records = json.loads(out.read_text())
    assert [(r["ours"]["frames"], r["ours"]["batch"]) for r in records] == [(4, 1), (4, 2), (6, 1), (6, 2)]
    for r in records:
        naive, ours = r["naive"], r["ours"]
        assert naive["transitions_per_s"] > 0 and ours["transitions_per_s"] > 0
        for figures in (naive, ours):  # the median of 3 windows taken in turns
            assert len(figures["window_transitions_per_s"]) == 3
            assert figures["transitions_per_s"] == sorted(figures["window_transitions_per_s"])[1]
        assert r["ratio"] == pytest.approx(ours["transitions_per_s"] / naive["transitions_per_s"])
        assert r["freed_memory_reused"] == freed_memory_reused()  # what the speed was measured under
        assert ours["flops_per_transition"] > 0 and ours["cache_bytes_per_frame"] > 0
        assert naive["peak_memory_bytes"] > 0 and ours["peak_memory_bytes"] > 0
    # the same video (and naive run) is shared by every B of one length
    assert records[0]["naive"] == records[1]["naive"]
    assert plot.read_bytes().startswith(b"\x89PNG")
    assert "SAM2VideoPredictor" in capsys.readouterr().out


def test_bench_parts(tmp_path: Path) -> None:
    out = tmp_path / "parts.json"
    assert main(["--parts", "--model", "nano", "--image-size", "64", "--batch", "1", "3", "--repeats", "1",
                 "--json", str(out)]) == 0
    (result,) = json.loads(out.read_text())
    assert result["encoder_ms_per_frame"] > 0
    assert [s["batch"] for s in result["step"]] == [1, 3]
    for step in result["step"]:  # the profile: the costliest operators of the step, most first
        shares = [op["share"] for op in step["top_ops"]]
        assert 0 < len(shares) <= 8 and shares == sorted(shares, reverse=True) and 0 < sum(shares) <= 1 + 1e-6
        assert all(op["op"].startswith("aten::") and op["ms_per_step"] >= 0 for op in step["top_ops"])


def test_bench_memory_runs_each_length_in_its_own_process(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "memory.json"
    assert main(["--memory", "--model", "nano", "--image-size", "64", "--frames", "20", "40", "--threads", "1",
                 "--device-mib", "0.25", "--host-mib", "0.25", "--json", str(out)]) == 0
    records = json.loads(out.read_text())
    assert [r["frames"] for r in records] == [20, 40]
    for r in records:
        assert r["frames_encoded"] == r["frames"]  # each frame once: nothing read twice, nothing ahead
        assert 0 < r["feature_bytes_held"] <= 0.5 * 2**20 < r["frames"] * r["feature_bytes_per_frame"]
        # the allowance for free memory at the heap's top: the commands' 128 MiB threshold (glibc)
        assert r["rss_kept_free_bytes"] == (128 << 20 if sys.platform.startswith("linux") else 0)
        assert r["rss_bound_bytes"] == r["rss_warm_bytes"] + 0.5 * 2**20 + r["rss_kept_free_bytes"]
        assert r["freed_memory_reused"] is True  # the child runs as the console commands do
        if r["held_peak_bytes"] is not None:  # glibc
            assert r["held_bound_bytes"] == r["held_warm_bytes"] + 0.5 * 2**20 and r["held_peak_bytes"] > 0
    printed = capsys.readouterr().out
    assert "held: what the allocations hold" in printed and "freed memory returned" not in printed


def test_held_bytes_follow_a_held_tensor() -> None:
    before = held_bytes()
    if before is None:
        pytest.skip("the C library does not report its heap (not glibc)")
    held = torch.ones(16 * 2**20, dtype=torch.uint8)  # 16 MiB, touched
    during = held_bytes()
    del held
    after = held_bytes()
    assert during is not None and after is not None
    assert during - before >= 16 * 2**20 and during - after >= 16 * 2**20


def test_bench_rejects_bad_sizes(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["--frames", "1"])
    assert "--frames" in capsys.readouterr().err
    assert sam2rl(["bench", "--model", "sam3", "--frames", "2"]) == 2
    assert capsys.readouterr().err.startswith("error: unknown SAM 2 model 'sam3'")
    assert sam2rl(["bench", "--model", "nano", "--image-size", "100", "--frames", "2"]) == 2
    assert "error: image_size must be a positive multiple of 32, got 100" in capsys.readouterr().err


def test_flop_count_includes_cpu_attention() -> None:
    q, k = torch.randn(2, 1, 16, 8), torch.randn(2, 1, 32, 8)
    flops = count_flops(lambda: torch.nn.functional.scaled_dot_product_attention(q, k, k))
    assert flops == 2 * (2 * 2 * 16 * 32 * 8)  # scores and weighted sum, 2 FLOPs per multiply-add


def test_flop_count_of_a_compiled_module() -> None:
    """`bench --compile` counts its step's FLOPs; torch.compile cannot trace under the counter."""
    layer = torch.nn.Linear(8, 4)
    compiled = torch.compile(layer, fullgraph=True)
    x = torch.randn(3, 8)
    compiled(x)
    assert count_flops(lambda: compiled(x)) == 2 * 3 * 8 * 4


def test_peak_memory_sees_a_temporary_allocation() -> None:
    with PeakMemory("cpu") as memory:
        before = memory.peak_bytes
        block = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
        time.sleep(0.05)  # several sampling periods
        del block
    assert memory.peak_bytes >= before + 48 * 2**20


def test_the_memory_table_gives_every_measure_its_warm_figure_peak_and_verdict() -> None:
    mib = 2**20
    record = {"image_size": 1024, "frames": 300, "frames_encoded": 300, "feature_bytes_per_frame": 16 * mib,
              "device_mib": 64, "host_mib": 64, "device": "cuda:0", "seconds": 30.0, "mean_iou": 0.5,
              **{f"{m}_{k}_bytes": v * mib for m in ("held", "rss", "cuda")
                 for k, v in (("warm", 100), ("peak", 150), ("bound", 164))}}
    record["cuda_peak_bytes"] = 200 * mib  # over its bound by 36 MiB
    console = Console(width=400, record=True)
    console.print(_memory_table([record], "t"))
    text = console.export_text()
    assert "CUDA, 16 frames" in text and "OVER by 36" in text and text.count("(within)") == 2
