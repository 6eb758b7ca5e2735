"""Engine benchmark: what the engine costs on top of diffusers, and what adapter switching saves.

    python bench/engine.py --json            # one JSON object on stdout, logs on stderr
    python bench/engine.py --skip-full-size  # quick: only the tiny-model overhead
    python bench/engine.py --json --gpu      # plus SD1.5-size fp16/bf16 (+ torch.compile) on CUDA

Measured in one run:

* raw_diffusers_s / engine_s / engine_overhead_ratio: the tiny model, a plain
  StableDiffusionPipeline call against Engine.txt2img with the same scheduler, prompt, steps, CFG,
  size and seed. Both are warmed up, then run interleaved (order rotated every repetition, so
  drift hits both alike), and the medians are compared. Target: ratio <= 1.05. A third arm calls
  the engine's own pipeline object directly (engine_pipe_direct_s): engine_code_overhead_ratio is
  then the engine's code alone, without effects of where each copy of the weights sits in memory.
  This part runs on one torch thread by default (--threads): on a 2-core shared VM two threads
  make single calls vary by +-10%, one thread by +-2%.
* cold_load_s / adapter_switch_s / switch_speedup: the full-size SD1.5 architecture (`sd15-random`,
  built into the models folder on first use). A cold load is what an app that loads a model per
  request pays: load_pipeline + move to the device + every weight really in memory (diffusers
  mmaps safetensors, so from_pretrained alone returns before reading the weights), with the
  model's files dropped from the page cache first; cold_load_warm_cache_s is the same with them
  cached. An adapter switch is what the engine pays per call on a warm base model
  (Engine.activate_adapters between two resident LoRAs). Target: speedup >= 50.
* compose_s / txt2img_s / compose_vs_txt2img: two subjects on the tiny model, at the same size and
  steps: a picture composed by regions (one batched UNet call a step for the background and both
  regions; face pass off) against a plain picture with both adapters on the whole picture. Target:
  ratio <= 3.0 (the batch grows with the regions, the step count does not). compose_sequential_s is
  the old method for comparison (the scene, then each person's strip repainted by inpaint at strength
  0.75, "only masked"). face_pass_s: the face pass alone on a real photograph (scikit-image's
  astronaut) at that size. isolation_ratio: generation.engine.isolation (target <= 0.5).
* gpu (only with --gpu): seconds per 512x512 image at 25 steps, CFG 7.5, fp16 and bf16, each with
  and without torch.compile of the UNet; and compose against txt2img at fp16 with two subjects.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PROMPT = "a photo of an old man walking his dog in the park"
SEED = 1
GUIDANCE = 7.5
LORA_RANK, LORA_ALPHA = 16, 32
LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
# Not "a"/"b": diffusers filters its "missing keys" warning with `adapter_name in key`, so one-letter
# ids make it print a long, spurious list of the other adapter's keys on load.
ADAPTERS = ("subject_a", "subject_b")
GPU_SIZE, GPU_STEPS, GPU_GUIDANCE = 512, 25, 7.5


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def median(values):
    return statistics.median(values) if values else None


def rounded(values, digits=4):
    return [round(v, digits) for v in values]


class Heartbeat:
    """Prints 'still working' to stderr while a long step (building sd15-random) runs."""

    def __init__(self, what: str, every: float = 30.0):
        self.what, self.every = what, every
        self._stop = threading.Event()

    def __enter__(self):
        self.started = time.perf_counter()

        def beat():
            while not self._stop.wait(self.every):
                log(f"  ... {self.what}: {time.perf_counter() - self.started:.0f} s so far")

        self._thread = threading.Thread(target=beat, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.seconds = time.perf_counter() - self.started


def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def ensure_model(name: str, models_dir: Path) -> tuple[Path, float | None]:
    """The built-in model's folder; built first if missing (returns the build time then)."""
    from generation.engine.models import MARKER, resolve_source

    target = models_dir / name
    if (target / MARKER).exists():
        return target, None
    size = "about 4 GB" if name == "sd15-random" else "small"
    log(f"building the built-in model {name!r} into {target} ({size}; this takes a while on a CPU)")
    with Heartbeat(f"building {name}") as beat:
        path, _ = resolve_source(name, models_dir)
    log(f"built {name} in {beat.seconds:.1f} s")
    return path, beat.seconds


# --- engine overhead on the tiny model --------------------------------------------------------


def bench_overhead(models_dir: Path, width: int, height: int, steps: int, repeats: int, warmup: int) -> dict:
    import numpy as np
    import torch
    from diffusers import DPMSolverMultistepScheduler, StableDiffusionPipeline

    from generation.engine import Engine, EngineOptions
    from generation.engine.models import SCHEDULER_CONFIG

    path, built_s = ensure_model("tiny", models_dir)
    engine = Engine(EngineOptions(base_model="tiny", models_dir=models_dir))
    device, dtype = engine.device, engine.dtype

    raw = StableDiffusionPipeline.from_pretrained(
        path, dtype=dtype, safety_checker=None, requires_safety_checker=False, local_files_only=True,
    )
    raw.scheduler = DPMSolverMultistepScheduler.from_config(raw.scheduler.config, **SCHEDULER_CONFIG)
    raw.set_progress_bar_config(disable=True)
    raw.to(device)
    if type(raw.scheduler) is not type(engine.text_pipe.scheduler) or dict(raw.scheduler.config) != dict(
        engine.text_pipe.scheduler.config
    ):
        log("warning: the raw pipeline's scheduler differs from the engine's")

    def run_raw():
        sync(device)
        started = time.perf_counter()
        image = raw(
            PROMPT, num_inference_steps=steps, guidance_scale=GUIDANCE, width=width, height=height,
            generator=torch.Generator("cpu").manual_seed(SEED),
        ).images[0]
        sync(device)
        return time.perf_counter() - started, image

    def run_engine():
        sync(device)
        started = time.perf_counter()
        image = engine.txt2img(PROMPT, steps=steps, guidance=GUIDANCE, width=width, height=height, seed=SEED).image
        sync(device)
        return time.perf_counter() - started, image

    def run_engine_pipe():
        # The engine's own pipeline object, called like the raw one: separates the engine's code
        # from effects of where each copy of the weights happens to sit in memory.
        sync(device)
        started = time.perf_counter()
        image = engine.text_pipe(
            PROMPT, num_inference_steps=steps, guidance_scale=GUIDANCE, width=width, height=height,
            generator=torch.Generator("cpu").manual_seed(SEED),
        ).images[0]
        sync(device)
        return time.perf_counter() - started, image

    log(f"tiny: warming up ({warmup} call(s) each, {width}x{height}, {steps} steps, CFG {GUIDANCE}, {device})")
    arms = [run_raw, run_engine, run_engine_pipe]
    for _ in range(warmup):
        for run in arms:
            run()

    times, images = {run: [] for run in arms}, {}
    for i in range(repeats):
        # Interleaved, with the order rotated every repetition (raw, engine, pipe; engine, pipe, raw;
        # ...) so drift (turbo, other load) and going first or last hit every arm alike.
        for run in arms[i % 3:] + arms[:i % 3]:
            seconds, images[run] = run()
            times[run].append(seconds)
        log(f"tiny: repetition {i + 1}/{repeats}: raw {times[run_raw][-1]:.3f} s, engine {times[run_engine][-1]:.3f} s, "
            f"engine's pipeline called directly {times[run_engine_pipe][-1]:.3f} s")
    raw_times, engine_times, pipe_times = times[run_raw], times[run_engine], times[run_engine_pipe]
    difference = int(np.abs(np.asarray(images[run_raw], dtype=np.int16)
                            - np.asarray(images[run_engine], dtype=np.int16)).max())

    raw_s, engine_s, pipe_s = median(raw_times), median(engine_times), median(pipe_times)
    result = dict(
        raw_diffusers_s=round(raw_s, 4),
        engine_s=round(engine_s, 4),
        engine_overhead_ratio=round(engine_s / raw_s, 4),
        engine_overhead_ratio_paired=round(median([e / r for e, r in zip(engine_times, raw_times)]), 4),
        engine_pipe_direct_s=round(pipe_s, 4),
        engine_code_overhead_ratio=round(engine_s / pipe_s, 4),
        raw_diffusers_samples_s=rounded(raw_times),
        engine_samples_s=rounded(engine_times),
        engine_pipe_direct_samples_s=rounded(pipe_times),
        tiny_images_max_pixel_difference=difference,  # 0: both did exactly the same computation
    )
    if built_s is not None:
        result["tiny_build_s"] = round(built_s, 1)
    del engine, raw
    gc.collect()
    return result


# --- several subjects: compose against txt2img ---------------------------------------------------


def two_regions(adapters, size):
    from generation.engine.options import Region

    half = size // 2
    return [Region(adapters[0], f"{PROMPT}, the man on the left", (0, 0, half, size), "a man", face=True),
            Region(adapters[1], f"{PROMPT}, the dog on the right", (half, size // 2, size, size), "a dog")]


def compose_arms(engine, adapters, size, steps, sync_device):
    """The three ways to draw two subjects, each returning its seconds: composed by regions, both adapters
    on the whole picture, and the old scene-then-strips method."""
    from PIL import Image

    regions = two_regions(adapters, size)

    def timed(work):
        sync(sync_device)
        started = time.perf_counter()
        work()
        sync(sync_device)
        return time.perf_counter() - started

    def compose():
        engine.compose(PROMPT, regions, steps=steps, guidance=GUIDANCE, width=size, height=size, seed=SEED,
                       face_pass=False)

    def txt2img():
        engine.txt2img(PROMPT, adapters=adapters, steps=steps, guidance=GUIDANCE, width=size, height=size, seed=SEED)

    def sequential():  # the method compose replaced, kept here only to compare with
        from generation.engine.images import box_mask

        scene = engine.txt2img(PROMPT, steps=steps, guidance=GUIDANCE, width=size, height=size, seed=SEED).image
        for region in regions:
            scene = engine.inpaint(scene, box_mask((size, size), region.box), region.prompt, strength=0.75,
                                   only_masked=True, steps=steps, guidance=GUIDANCE, width=size, height=size,
                                   seed=SEED, adapters=[region.adapter]).image
        assert isinstance(scene, Image.Image)

    return {"compose": lambda: timed(compose), "txt2img": lambda: timed(txt2img),
            "sequential": lambda: timed(sequential)}


def bench_compose(models_dir: Path, size: int, steps: int, repeats: int, warmup: int) -> dict:
    import tempfile

    from PIL import Image

    from generation.engine import Adapter, Engine, EngineOptions
    from generation.engine.isolation import isolation_ratio
    from generation.engine.options import Region

    ensure_model("tiny", models_dir)
    engine = Engine(EngineOptions(base_model="tiny", models_dir=models_dir))
    with tempfile.TemporaryDirectory() as folder:
        files = make_loras(engine.text_pipe.unet, Path(folder), names=("man", "dog", "other_dog"))
        adapters = [Adapter("bench_man", path=files["man"]), Adapter("bench_dog", path=files["dog"])]
        arms = compose_arms(engine, adapters, size, steps, engine.device)
        log(f"compose: warming up ({warmup} call(s) each, {size}x{size}, {steps} steps, two subjects)")
        for _ in range(warmup):
            for run in arms.values():
                run()
        times = {name: [] for name in arms}
        names = list(arms)
        for i in range(repeats):
            for name in names[i % 3:] + names[:i % 3]:  # interleaved, order rotated
                times[name].append(arms[name]())
            log(f"compose: repetition {i + 1}/{repeats}: " + ", ".join(f"{n} {times[n][-1]:.3f} s" for n in names))

        try:  # a real face to repaint: scikit-image's photograph (a dev dependency)
            from skimage import data

            side = max(size, 256)  # a face the detector can find (under ~20 pixels it finds none)
            photo = Image.fromarray(data.astronaut()).resize((side, side))
            whole = [Region(adapters[0], PROMPT, (0, 0, side, side), face=True)]
            face_times = []
            for _ in range(max(1, repeats // 2)):
                started = time.perf_counter()
                passed = engine.face_pass(photo, whole, steps=steps, guidance=GUIDANCE, seed=SEED)
                face_times.append(time.perf_counter() - started)
            face_pass_s = round(median(face_times), 4)
            faces_found = sum(1 for face in passed.parameters["faces"] if face["face"])
        except ImportError:
            face_pass_s, faces_found = None, None
        isolation = isolation_ratio(engine, adapters[0], adapters[1], Adapter("bench_other_dog", path=files["other_dog"]),
                                    width=size, height=size, steps=steps, seed=SEED)
    compose_s, txt2img_s, sequential_s = (median(times[n]) for n in ("compose", "txt2img", "sequential"))
    del engine
    gc.collect()
    return dict(
        compose_s=round(compose_s, 4), txt2img_s=round(txt2img_s, 4),
        compose_vs_txt2img=round(compose_s / txt2img_s, 3),
        compose_sequential_s=round(sequential_s, 4),
        compose_sequential_vs_txt2img=round(sequential_s / txt2img_s, 3),
        compose_samples_s=rounded(times["compose"]), txt2img_samples_s=rounded(times["txt2img"]),
        face_pass_s=face_pass_s, face_pass_faces_found=faces_found,
        isolation_ratio=isolation["isolation_ratio"], isolation_regional_change=isolation["regional_change"],
        isolation_global_change=isolation["global_change"],
    )


# --- cold load vs adapter switch on the full-size architecture ------------------------------------


def make_loras(unet, folder: Path, names=ADAPTERS) -> dict[str, Path]:
    """Random rank-16 LoRAs for this UNet (two unless `names` says), written as diffusers LoRA files.

    The adapters are added to the given UNet, read out and deleted again (no copy of the UNet).
    """
    import torch
    from peft import LoraConfig, get_peft_model_state_dict

    from generation.engine.lora_formats import save_diffusers_lora

    paths = {}
    for index, name in enumerate(names):
        torch.manual_seed(1000 + index)
        config = LoraConfig(r=LORA_RANK, lora_alpha=LORA_ALPHA, target_modules=LORA_TARGETS, init_lora_weights=False)
        adapter_name = f"bench_{name}"
        unet.add_adapter(config, adapter_name=adapter_name)
        state = get_peft_model_state_dict(unet, adapter_name=adapter_name)
        state = {key: value.detach().clone() for key, value in state.items()}
        unet.delete_adapters(adapter_name)
        path = folder / f"sd15-random-{name}.safetensors"
        save_diffusers_lora(state, path, rank=LORA_RANK, alpha=LORA_ALPHA, target_modules=LORA_TARGETS)
        paths[name] = path
    return paths


def evict_from_page_cache(folder: Path) -> bool:
    """Drop this model's files (only these) from the OS page cache, so the next load reads the disk.

    Linux/Unix only (posix_fadvise); returns False where it is not available.
    """
    if not hasattr(os, "posix_fadvise"):
        return False
    for file in folder.rglob("*"):
        if file.is_file():
            handle = os.open(file, os.O_RDONLY)
            try:
                os.fsync(handle)  # dirty pages cannot be dropped
                os.posix_fadvise(handle, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(handle)
    return True


def materialize(pipe, device) -> None:
    """Make sure every weight is really in memory.

    diffusers loads safetensors through mmap: from_pretrained returns in a fraction of a second
    and the weights are read from disk only when first used (by the first picture). Moving to a
    GPU reads them all; on the CPU we read one value per memory page of every tensor instead.
    """
    if device.type != "cpu":
        return
    for name in ("unet", "vae", "text_encoder"):
        module = getattr(pipe, name)
        for tensor in list(module.parameters()) + list(module.buffers()):
            flat = tensor.detach().reshape(-1)
            flat[:: max(1, 4096 // flat.element_size())].sum()


def timed_load(path: Path, device, dtype, evict: bool):
    """(seconds, pipeline): load_pipeline + move to the device + weights really in memory."""
    from generation.engine.models import load_pipeline

    gc.collect()
    if evict:
        evict_from_page_cache(path)
    sync(device)
    started = time.perf_counter()
    pipe = load_pipeline(path, dtype)
    pipe.to(device)
    materialize(pipe, device)
    sync(device)
    seconds = time.perf_counter() - started
    return seconds, pipe


def bench_full_size(models_dir: Path, cold_loads: int, switches: int) -> dict:
    from generation.engine import Adapter, Engine, EngineOptions
    from generation.engine.engine import pick_device

    path, built_s = ensure_model("sd15-random", models_dir)
    device, dtype = pick_device(None, None)

    # 1. Cold loads: the whole pipeline from disk to the device, as a per-request app would; first
    #    with this model's files dropped from the page cache (really from disk), then with them
    #    cached (a lower bound: a per-request app with many models rarely finds its file cached).
    can_evict = hasattr(os, "posix_fadvise")
    load_times, cached_times, pipe = [], [], None
    for evict, times, label in ((True, load_times, "from disk"), (False, cached_times, "page cache warm")):
        if evict and not can_evict:
            log("sd15-random: cannot drop files from the page cache here (no posix_fadvise); "
                "cold_load_s is measured with the files possibly cached")
        for i in range(cold_loads):
            pipe = None
            seconds, pipe = timed_load(path, device, dtype, evict and can_evict)
            times.append(seconds)
            log(f"sd15-random: cold load ({label}) {i + 1}/{cold_loads}: {seconds:.2f} s")
    # Borrow the last loaded UNet to make the two test adapters (then drop it).
    log("sd15-random: making two random LoRAs (rank 16, alpha 32, to_q/to_k/to_v/to_out.0)")
    loras = make_loras(pipe.unet, models_dir / "bench")
    pipe = None
    gc.collect()

    # 2. A warm engine: adapters loaded once, then switched per call.
    log("sd15-random: starting a warm engine")
    engine = Engine(EngineOptions(base_model="sd15-random", models_dir=models_dir))
    first_loads = {}
    for name in ADAPTERS:
        started = time.perf_counter()
        engine.load_adapter(name, loras[name])
        first_loads[name] = time.perf_counter() - started
        log(f"sd15-random: first load of adapter {name!r}: {first_loads[name]:.3f} s")

    for name in ADAPTERS:  # warm-up of the switch path itself
        engine.activate_adapters([Adapter(name, 1.0)])
    switch_times = []
    for i in range(switches):
        name = ADAPTERS[(i + 1) % 2]
        sync(device)
        started = time.perf_counter()
        engine.activate_adapters([Adapter(name, 1.0)])  # what every txt2img/img2img/inpaint call does
        sync(device)
        switch_times.append(time.perf_counter() - started)
        if engine.active_adapters() != [name]:
            raise SystemExit(f"bench: after switching to {name!r} the engine reports {engine.active_adapters()}")
    log(f"sd15-random: {switches} switches, median {median(switch_times) * 1000:.2f} ms")

    # Where a switch's time goes: diffusers' set_adapters (walks every LoRA layer) and the engine's check.
    def median_ms(call):
        times = []
        for i in range(switches):
            started = time.perf_counter()
            call(ADAPTERS[(i + 1) % 2])
            times.append(time.perf_counter() - started)
        return round(median(times) * 1000, 3)

    breakdown = dict(
        set_adapters_ms=median_ms(lambda name: engine.text_pipe.set_adapters([name], adapter_weights=[1.0])),
        active_adapters_check_ms=median_ms(lambda name: engine.active_adapters()),
    )

    cold_s, switch_s = median(load_times), median(switch_times)
    result = dict(
        cold_load_s=round(cold_s, 3),
        adapter_switch_s=round(switch_s, 5),
        switch_speedup=round(cold_s / switch_s, 1),
        cold_load_from_disk=can_evict,
        cold_load_warm_cache_s=round(median(cached_times), 3),
        switch_speedup_warm_cache=round(median(cached_times) / switch_s, 1),
        adapter_first_load_s=round(median(list(first_loads.values())), 3),
        adapter_first_load_samples_s={k: round(v, 3) for k, v in first_loads.items()},
        cold_load_samples_s=rounded(load_times, 3),
        cold_load_warm_cache_samples_s=rounded(cached_times, 3),
        adapter_switch_samples_s=rounded(switch_times, 5),
        adapter_switch_breakdown=breakdown,
        full_size_model="sd15-random",
        lora=dict(rank=LORA_RANK, alpha=LORA_ALPHA, target_modules=LORA_TARGETS,
                  file_mb=round(loras[ADAPTERS[0]].stat().st_size / 2**20, 2)),
    )
    if built_s is not None:
        result["sd15_random_build_s"] = round(built_s, 1)
    del engine
    gc.collect()
    return result


# --- GPU: SD1.5 size, fp16 / bf16, with and without torch.compile ----------------------------------


def bench_gpu(models_dir: Path, repeats: int, compile_mode: str, *, device: str = "cuda",
              model: str = "sd15-random", size: int = GPU_SIZE, steps: int = GPU_STEPS,
              precisions=("fp16", "bf16")) -> dict:
    """Seconds per picture through Engine.txt2img, per precision, without and with a compiled UNet.

    (device/model/size/steps/precisions are parameters only so this can be dry-run on a CPU.)
    """
    import torch

    from generation.engine import Engine, EngineOptions

    ensure_model(model, models_dir)
    target = torch.device(device)
    result = dict(
        gpu_name=torch.cuda.get_device_name(0) if target.type == "cuda" else None, cuda=torch.version.cuda,
        model=model, width=size, height=size, steps=steps, guidance=GPU_GUIDANCE, repeats=repeats,
        compile_mode=compile_mode,
    )
    for precision in precisions:
        engine = None
        try:
            engine = Engine(EngineOptions(base_model=model, models_dir=models_dir, device=device,
                                          precision=precision))

            def one():
                sync(target)
                started = time.perf_counter()
                engine.txt2img(PROMPT, steps=steps, guidance=GPU_GUIDANCE, width=size, height=size, seed=SEED)
                sync(target)
                return time.perf_counter() - started

            for compiled in (False, True):
                key = f"{precision}_compiled" if compiled else precision
                try:
                    if compiled:
                        engine.text_pipe.unet = torch.compile(engine.text_pipe.unet, mode=compile_mode)
                    log(f"gpu: {key}: warming up" + (" (compiling the UNet, may take minutes)" if compiled else ""))
                    first = one()
                    one()
                    samples = [one() for _ in range(repeats)]
                    result[f"{key}_s"] = round(median(samples), 4)
                    result[f"{key}_samples_s"] = rounded(samples)
                    result[f"{key}_first_call_s"] = round(first, 3)
                    log(f"gpu: {key}: {result[f'{key}_s']:.3f} s per image")
                except Exception as exc:  # keep the other variants' numbers
                    result[f"{key}_s"] = None
                    result[f"{key}_error"] = f"{type(exc).__name__}: {exc}"[:500]
                    log(f"gpu: {key} failed: {type(exc).__name__}: {exc}")
        except Exception as exc:
            result[f"{precision}_error"] = f"{type(exc).__name__}: {exc}"[:500]
            log(f"gpu: {precision} failed: {type(exc).__name__}: {exc}")
        finally:
            engine = None
            torch._dynamo.reset()
            gc.collect()
            if target.type == "cuda":
                torch.cuda.empty_cache()
    if precisions:
        result.update(gpu_compose(models_dir, repeats, device=device, model=model, size=size, steps=steps,
                                  precision=precisions[0]))
    return result


def gpu_compose(models_dir: Path, repeats: int, *, device, model, size, steps, precision) -> dict:
    """compose (two subjects, one batched UNet call a step) against txt2img with both adapters, and the old
    sequential method, at the full size and precision."""
    import tempfile

    import torch

    from generation.engine import Adapter, Engine, EngineOptions

    key = f"compose_{precision}"
    try:
        engine = Engine(EngineOptions(base_model=model, models_dir=models_dir, device=device, precision=precision))
        with tempfile.TemporaryDirectory() as folder:
            files = make_loras(engine.text_pipe.unet, Path(folder))
            adapters = [Adapter("bench_man", path=files[ADAPTERS[0]]), Adapter("bench_dog", path=files[ADAPTERS[1]])]
            arms = compose_arms(engine, adapters, size, steps, torch.device(device))
            for run in arms.values():
                run()
            times = {name: [] for name in arms}
            names = list(arms)
            for i in range(repeats):
                for name in names[i % 3:] + names[:i % 3]:
                    times[name].append(arms[name]())
        compose_s, txt2img_s, sequential_s = (median(times[n]) for n in names)
        log(f"gpu: compose {compose_s:.3f} s, txt2img {txt2img_s:.3f} s, sequential {sequential_s:.3f} s")
        return {f"{key}_s": round(compose_s, 4), f"txt2img_two_adapters_{precision}_s": round(txt2img_s, 4),
                f"{key}_vs_txt2img": round(compose_s / txt2img_s, 3),
                f"{key}_sequential_s": round(sequential_s, 4)}
    except Exception as exc:  # keep the other figures
        log(f"gpu: compose failed: {type(exc).__name__}: {exc}")
        return {f"{key}_error": f"{type(exc).__name__}: {exc}"[:500]}


# --- main -------------------------------------------------------------------------------------


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout (logs go to stderr)")
    parser.add_argument("--models-dir", type=Path, default=Path("var/models"),
                        help="where the built-in models are (built there on first use); default var/models")
    parser.add_argument("--skip-full-size", action="store_true", help="skip the sd15-random part (quick run)")
    parser.add_argument("--repeats", type=int, default=7, help="timed repetitions per side (median); default 7")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up calls per side before timing; default 2")
    parser.add_argument("--size", type=int, default=256, help="tiny-model picture side in pixels; default 256")
    parser.add_argument("--steps", type=int, default=20, help="tiny-model steps; default 20")
    parser.add_argument("--cold-loads", type=int, default=3,
                        help="full-size cold loads (median), from disk and again with the page cache warm; default 3")
    parser.add_argument("--switches", type=int, default=20, help="adapter switches timed (median); default 20")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads during the tiny-model overhead comparison (default 1: the "
                             "steadiest ratio on a small shared machine; 0: torch's default). The rest of "
                             "the run uses torch's default")
    parser.add_argument("--gpu", action="store_true", help="also time SD1.5 size on CUDA (fp16/bf16, torch.compile)")
    parser.add_argument("--compile-mode", default="max-autotune-no-cudagraphs",
                        help="torch.compile mode for --gpu; default max-autotune-no-cudagraphs")
    args = parser.parse_args(argv)
    if args.threads < 0:
        parser.error("--threads must be 0 (torch's default) or more")
    for name in ("repeats", "cold_loads", "switches", "size", "steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.warmup < 0:
        parser.error("--warmup must be 0 or more")
    if args.size % 8:
        parser.error("--size must be a multiple of 8")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    # Only the result goes to stdout: everything else (our logs, library warnings, progress bars,
    # even output from C code) is sent to stderr for the duration of the run.
    result_out = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr

    import torch

    if args.gpu and not torch.cuda.is_available():
        log("--gpu asks for CUDA timings, but torch.cuda.is_available() is False "
            f"(torch {torch.__version__}); run without --gpu, or on a machine with an NVIDIA GPU.")
        return 2

    import diffusers

    from generation.engine.engine import pick_device
    from generation.engine.logs import quiet_library_logs

    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    if load_before is not None and load_before > 0.5:
        log(f"warning: the 1-minute load average is {load_before:.2f} before starting: other processes are "
            "using the CPU, so the timings may be noisy (torch's threads wait on each other)")
    quiet_library_logs()

    started = time.perf_counter()
    device, dtype = pick_device(None, None)
    result = dict(
        device=device.type,
        dtype=str(dtype).removeprefix("torch."),
        torch_version=torch.__version__,
        diffusers_version=diffusers.__version__,
        python_version=platform.python_version(),
        cpu_count=os.cpu_count(),
        torch_threads=torch.get_num_threads(),
        overhead_torch_threads=args.threads or torch.get_num_threads(),
        load_average_before=None if load_before is None else round(load_before, 2),
        width=args.size, height=args.size, steps=args.steps, guidance=GUIDANCE,
        repeats=args.repeats, warmup=args.warmup,
        cold_loads=None if args.skip_full_size else args.cold_loads,
        switches=None if args.skip_full_size else args.switches,
    )
    models_dir = args.models_dir
    default_threads = torch.get_num_threads()
    torch.set_num_threads(args.threads or default_threads)
    try:
        result.update(bench_overhead(models_dir, args.size, args.size, args.steps, args.repeats, args.warmup))
    finally:
        torch.set_num_threads(default_threads)
    torch.set_num_threads(args.threads or default_threads)  # the same steady single thread as the overhead
    try:
        result.update(bench_compose(models_dir, args.size, args.steps, args.repeats, args.warmup))
    finally:
        torch.set_num_threads(default_threads)
    if not args.skip_full_size:
        result.update(bench_full_size(models_dir, args.cold_loads, args.switches))
    result["gpu"] = bench_gpu(models_dir, args.repeats, args.compile_mode) if args.gpu else None
    result["total_s"] = round(time.perf_counter() - started, 1)
    if hasattr(os, "getloadavg"):
        result["load_average_after"] = round(os.getloadavg()[0], 2)
    result["targets_met"] = dict(
        engine_overhead_ratio_le_1_05=result["engine_overhead_ratio"] <= 1.05,
        switch_speedup_ge_50=None if args.skip_full_size else result["switch_speedup"] >= 50,
        compose_vs_txt2img_le_3=result["compose_vs_txt2img"] <= 3.0,
        isolation_ratio_le_0_5=result["isolation_ratio"] <= 0.5,
    )

    if args.json:
        result_out.write(json.dumps(result) + "\n")
    else:
        width = max(len(key) for key in result)
        for key, value in result.items():
            result_out.write(f"{key:<{width}}  {value}\n")
    result_out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
