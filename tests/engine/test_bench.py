"""The benchmark keeps working (its figures are reported in issue notes, never asserted here)."""

import json
import subprocess
import sys

from tests.engine.conftest import MODELS_DIR, ROOT


def test_the_engine_benchmark_prints_one_json_object_with_its_keys():
    result = subprocess.run(
        [sys.executable, "bench/engine.py", "--json", "--skip-full-size", "--repeats", "1", "--warmup", "0",
         "--size", "64", "--steps", "2", "--models-dir", str(MODELS_DIR)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert {"raw_diffusers_s", "engine_s", "engine_overhead_ratio"} <= figures.keys()
    assert {"compose_s", "txt2img_s", "compose_vs_txt2img", "compose_sequential_s", "face_pass_s",
            "isolation_ratio"} <= figures.keys()
    assert figures["face_pass_faces_found"] == 1  # the astronaut's face, repainted
    assert figures["isolation_ratio"] < 0.5
    assert figures["tiny_images_max_pixel_difference"] == 0  # the engine did the same work as diffusers
    assert figures["gpu"] is None


def test_the_training_benchmark_prints_its_figures():
    result = subprocess.run(
        [sys.executable, "bench/training.py", "--json", "--resolution", "64", "--steps", "4", "--warmup", "1",
         "--models-dir", str(MODELS_DIR)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["cached_step_s"] > 0 and figures["uncached_step_s"] > 0 and "cache_speedup" in figures
    assert 5 < figures["adapter_mb_sd15_rank16_fp16"] <= 13  # the target, from the real writer


def test_the_gpu_compose_figures_run_on_any_device():
    """bench/engine.py --gpu's compose part, dry-run on the CPU with the tiny model (no GPU here)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_engine", ROOT / "bench" / "engine.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    figures = bench.gpu_compose(MODELS_DIR, 1, device="cpu", model="tiny", size=64, steps=2, precision="fp32")
    assert "compose_fp32_error" not in figures, figures
    assert figures["compose_fp32_s"] > 0 and figures["compose_fp32_vs_txt2img"] > 0
    assert figures["compose_fp32_sequential_s"] > 0
