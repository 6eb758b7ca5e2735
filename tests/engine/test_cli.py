import re
import signal
import subprocess
import sys

import numpy as np
from PIL import Image

from tests.engine.conftest import MODELS_DIR, ROOT
from tests.processes import SAFETY_LIMIT, die_with_parent, wait_until


def run(*args):
    return subprocess.run([sys.executable, "-m", "generation.engine", *args, "--models-dir", str(MODELS_DIR)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_txt2img_saves_the_picture_and_says_where_and_which_seed(tmp_path):
    out = tmp_path / "walk.png"
    result = run("txt2img", "--prompt", "an old man walking with his dog", "--width", "64", "--height", "64",
                 "--steps", "3", "--seed", "42", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert f"Saved {out} (seed 42)" in result.stdout and "demo model" in result.stdout
    assert Image.open(out).size == (64, 64)
    assert "3/3" in result.stderr  # the progress bar


def test_inpaint_from_files(tmp_path):
    Image.new("RGB", (64, 64), "white").save(tmp_path / "in.png")
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (8, 8, 40, 40))
    mask.save(tmp_path / "mask.png")
    result = run("inpaint", "--image", str(tmp_path / "in.png"), "--mask", str(tmp_path / "mask.png"),
                 "--prompt", "a dog", "--steps", "3", "--masked-content", "fill", "--quiet",
                 "--out", str(tmp_path / "out.png"))
    assert result.returncode == 0, result.stderr
    assert Image.open(tmp_path / "out.png").size == (64, 64)


def test_bad_input_is_one_clear_line_and_exit_code_2(tmp_path):
    result = run("txt2img", "--prompt", "a dog", "--width", "65", "--out", str(tmp_path / "x.png"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: width must be a multiple of 8 (the model works in 8-pixel blocks), not 65.")
    assert "Traceback" not in result.stderr


def test_help_explains_the_commands():
    result = subprocess.run([sys.executable, "-m", "generation.engine", "--help"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0
    for command in ("txt2img", "img2img", "inpaint", "compose"):
        assert command in result.stdout


def write_photos(folder, count=4):
    folder.mkdir()
    for index in range(count):
        rng = np.random.default_rng(index)
        base = np.array([(60 * index) % 255, 120, 255 - 50 * index], dtype=np.float32)
        pixels = np.clip(base + rng.normal(0, 60, (96, 96, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"photo-{index}.png")
    return folder


TRAIN_ARGS = ["--token", "sqgkhoju", "--class-word", "man", "--kind", "object", "--resolution", "64",
              "--rank", "4", "--checkpoint-every", "10", "--sample-steps", "1", "--models-dir", str(MODELS_DIR)]


def test_train_killed_hard_resumes_from_its_last_checkpoint_when_run_again(tmp_path):
    photos, out = write_photos(tmp_path / "photos"), tmp_path / "out"
    command = [sys.executable, "-m", "generation.engine", "train", "--photos", str(photos), "--out", str(out),
               "--steps", "150", *TRAIN_ARGS]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               preexec_fn=die_with_parent())
    try:
        def checkpoint_written():
            assert process.poll() is None, "the training ended before its first checkpoint"
            return (out / "checkpoints" / "step-000010").is_dir()

        wait_until(checkpoint_written, "a first checkpoint", poll=0.05)
        process.send_signal(signal.SIGKILL)  # a crash: no clean-up code runs
    finally:
        process.wait(timeout=30)
    assert not (out / "lora.safetensors").exists()

    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=SAFETY_LIMIT,
                            preexec_fn=die_with_parent())
    assert result.returncode == 0, result.stderr
    resumed_from = int(re.search(r"Resumed from step (\d+)\.", result.stdout).group(1))
    assert resumed_from >= 10 and resumed_from % 10 == 0
    assert f"Saved {out / 'lora.safetensors'}" in result.stdout
    assert "150/150" in result.stderr and "loss" in result.stderr  # the progress bar


def test_train_reports_photo_problems_and_bad_input_in_plain_words(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run("train", "--photos", str(empty), "--out", str(tmp_path / "out"), "--token", "sqgkhoju",
                 "--class-word", "man")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ")
    result = run("train", "--photos", str(write_photos(tmp_path / "photos")), "--out", str(tmp_path / "out"),
                 "--token", "dog", "--class-word", "man")
    assert result.returncode == 2 and "already knows" in result.stderr
