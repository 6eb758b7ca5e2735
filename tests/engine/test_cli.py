import subprocess
import sys

from PIL import Image

from tests.engine.conftest import MODELS_DIR, ROOT


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
