"""Command line for the engine: python -m generation.engine {txt2img,img2img,inpaint,compose} ...

Examples:
  python -m generation.engine txt2img --prompt "an old man walking in the mountains with his dog" --out walk.png
  python -m generation.engine img2img --image sketch.png --prompt "a watercolour of a church" --out church.png
  python -m generation.engine inpaint --image walk.png --mask mask.png --prompt "a brown dog" --out fixed.png
  python -m generation.engine compose --prompt "two people on a beach" \\
      --region-adapter ana=ana.safetensors --region-prompt "a photo of sqgkhoju woman on a beach" \\
      --region-box 0,0,256,512 \\
      --region-adapter tobi=tobi.safetensors --region-prompt "a photo of zxqvtob dog on a beach" \\
      --region-box 256,256,512,512 --out beach.png
  python -m generation.engine train --photos photos/juan --token sqgkhoju --class-word man \\
      --out var/train/juan            (run it again with the same --out to resume)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from . import Adapter, Cancelled, Engine, EngineError, EngineInputError, EngineOptions, Region
from .logs import quiet_library_logs
from .photos import load_photo_folder
from .training import STEPS_PER_PHOTO, Trainer, TrainingOptions, default_steps


def _adapter(spec: str) -> Adapter:
    """ID=PATH or ID=PATH@WEIGHT."""
    if "=" not in spec:
        raise argparse.ArgumentTypeError(f"{spec!r}: write an adapter as ID=PATH or ID=PATH@WEIGHT")
    adapter_id, _, rest = spec.partition("=")
    path, _, weight = rest.partition("@")
    try:
        return Adapter(adapter_id, float(weight) if weight else 1.0, path)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{spec!r}: the weight after @ must be a number")


def _box(spec: str) -> tuple[int, int, int, int]:
    try:
        left, top, right, bottom = (int(v) for v in spec.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{spec!r}: write a box as LEFT,TOP,RIGHT,BOTTOM in pixels")
    return left, top, right, bottom


def _image(path: str) -> Image.Image:
    try:
        with Image.open(path) as image:
            image.load()
            return image
    except (OSError, UnidentifiedImageError) as exc:
        raise argparse.ArgumentTypeError(f"cannot read the picture {path}: {exc}")


def build_parser() -> argparse.ArgumentParser:
    model_args = argparse.ArgumentParser(add_help=False)
    model = model_args.add_argument_group("model")
    model.add_argument("--model", help="tiny (default, a demo model), sd15-random, a diffusers folder or a "
                                        ".safetensors/.ckpt file; default $LIFEBOOK_BASE_MODEL")
    model.add_argument("--models-dir", help="where built-in models are built (default $LIFEBOOK_MODELS_DIR or var/models)")
    model.add_argument("--device", help="cuda, mps or cpu (default: the best available)")
    model.add_argument("--precision", choices=["fp16", "bf16", "fp32"], help="default: fp16 on a GPU, fp32 on CPU")
    model.add_argument("--low-memory", action="store_true", help="attention slicing, VAE tiling and CPU offload")
    common = argparse.ArgumentParser(add_help=False, parents=[model_args])
    gen = common.add_argument_group("picture")
    gen.add_argument("--prompt", required=True, help="what the picture shows")
    gen.add_argument("--negative", default="", help="what it should not show")
    gen.add_argument("--steps", type=int, help="denoising steps")
    gen.add_argument("--guidance", type=float, help="how closely to follow the prompt (CFG)")
    gen.add_argument("--width", type=int, help="pixels, a multiple of 8")
    gen.add_argument("--height", type=int, help="pixels, a multiple of 8")
    gen.add_argument("--seed", type=int, help="the same seed and inputs give the same picture")
    gen.add_argument("--out", required=True, type=Path, help="where to save the PNG")
    gen.add_argument("--quiet", action="store_true", help="no progress bar")

    parser = argparse.ArgumentParser(
        prog="python -m generation.engine",
        description="Make pictures with Lifebook's engine (no web app needed).",
        epilog=__doc__.split("Examples:", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_adapters(p):
        p.add_argument("--adapter", action="append", type=_adapter, default=[], metavar="ID=PATH[@WEIGHT]",
                       help="a subject's LoRA file, repeatable")
        p.add_argument("--num-images", type=int, default=1, help="how many candidates (saved as NAME_1.png, ...)")
        return p

    with_adapters(commands.add_parser("txt2img", parents=[common], help="a picture from a description"))
    p = with_adapters(commands.add_parser("img2img", parents=[common], help="a picture from a sketch or picture"))
    p.add_argument("--image", required=True, type=_image, help="the sketch or picture to start from")
    p.add_argument("--strength", type=float, default=0.75, help="0-1: how much to change it (default 0.75)")
    p = with_adapters(commands.add_parser("inpaint", parents=[common], help="repaint part of a picture"))
    p.add_argument("--image", required=True, type=_image)
    p.add_argument("--mask", required=True, type=_image, help="white = the part to repaint")
    p.add_argument("--mask-mode", choices=["masked", "not_masked"], default="masked")
    p.add_argument("--masked-content", choices=["original", "fill", "latent_noise", "latent_nothing"],
                   default="original")
    p.add_argument("--strength", type=float, default=0.75)
    p.add_argument("--mask-blur", type=int, default=4)
    p.add_argument("--only-masked", action="store_true", help="crop around the mask and repaint at full size")
    p.add_argument("--padding", type=int, default=32)
    p = commands.add_parser("compose", parents=[common],
                            help="several trained subjects in one picture, each drawn in its own region with "
                                 "only its own adapter")
    p.add_argument("--scene-adapter", action="append", type=_adapter, default=[], metavar="ID=PATH[@WEIGHT]",
                   help="the background's adapters: a place, a style")
    p.add_argument("--region-adapter", action="append", type=_adapter, default=[], metavar="ID=PATH[@WEIGHT]",
                   help="a person, pet or object: one per region")
    p.add_argument("--region-prompt", action="append", default=[], help="one per --region-adapter, in order")
    p.add_argument("--region-box", action="append", type=_box, default=[], metavar="L,T,R,B",
                   help="one per --region-adapter, in order")
    p.add_argument("--layout-fraction", type=float, default=0.25,
                   help="the share of steps drawn with no adapter, so that the composition forms (default 0.25)")
    p.add_argument("--no-face-pass", action="store_true",
                   help="do not look for a face in each region and repaint it at the end")
    p.add_argument("--keep-stages", action="store_true", help="also save the picture before the face pass")
    add_train_parser(commands, model_args)
    return parser


def add_train_parser(commands, model_args):
    defaults = TrainingOptions()
    p = commands.add_parser("train", parents=[model_args], help="train a subject's adapter from its photos",
                            description="Train a LoRA adapter for one subject. Run it again with the same --out "
                                        "to resume from the last checkpoint.")
    p.add_argument("--photos", required=True, type=Path, help="a folder of about 10 varied photos (jpg, png, webp)")
    p.add_argument("--token", required=True, help="a made-up word that will name the subject, e.g. sqgkhoju")
    p.add_argument("--class-word", required=True, help="what the subject is: man, woman, dog, church...")
    p.add_argument("--kind", choices=["person", "place", "pet", "object", "style"], default="person",
                   help="people's photos are cropped around the face (default person)")
    p.add_argument("--out", required=True, type=Path, help="the training folder (checkpoints, samples, the adapter)")
    p.add_argument("--steps", type=int, help=f"default: {STEPS_PER_PHOTO} per photo ({default_steps(10)} for 10)")
    p.add_argument("--resolution", type=int, default=defaults.resolution)
    p.add_argument("--rank", type=int, default=defaults.rank)
    p.add_argument("--alpha", type=float, default=defaults.alpha)
    p.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    p.add_argument("--batch-size", type=int, default=defaults.batch_size)
    p.add_argument("--checkpoint-every", type=int, default=defaults.checkpoint_every)
    p.add_argument("--keep-states", type=int, default=defaults.keep_states,
                   help="how many resumable states to keep (every checkpoint keeps its weights and samples)")
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--snr-gamma", type=float, help="Min-SNR loss weighting, e.g. 5")
    p.add_argument("--train-text-encoder", action="store_true", help="also train a LoRA on the text encoder")
    p.add_argument("--prior-preservation", action="store_true", help="keep the class word's meaning with base-model pictures")
    p.add_argument("--class-images", type=int, default=defaults.class_images)
    p.add_argument("--gradient-checkpointing", action="store_true", help="less GPU memory, slower steps")
    p.add_argument("--no-8bit-adam", action="store_true", help="plain AdamW even where bitsandbytes is there")
    p.add_argument("--sample-steps", type=int, default=defaults.sample_steps)
    p.add_argument("--sample-resolution", type=int, default=None,
                   help="side of the checkpoint samples in pixels (default: the training resolution)")
    p.add_argument("--kohya", action="store_true", help="also export the adapter in kohya's format (A1111, ComfyUI)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    quiet_library_logs()
    options = EngineOptions.from_env(**{
        key: value for key, value in dict(
            base_model=args.model, models_dir=Path(args.models_dir) if args.models_dir else None,
            device=args.device, precision=args.precision,
        ).items() if value is not None
    }, **({"attention_slicing": True, "vae_tiling": True, "cpu_offload": True} if args.low_memory else {}))
    if args.command == "train":
        return _train(args, options)
    result = _reporting_errors(lambda: _run(Engine(options), args))
    if isinstance(result, int):
        return result
    args.out.parent.mkdir(parents=True, exist_ok=True)
    outputs = [args.out] if len(result.images) == 1 else [
        args.out.with_name(f"{args.out.stem}_{i + 1}{args.out.suffix}") for i in range(len(result.images))
    ]
    for image, seed, path in zip(result.images, result.seeds, outputs):
        image.save(path)
        print(f"Saved {path} (seed {seed})")
    if getattr(args, "keep_stages", False):
        for i, (label, image) in enumerate(result.intermediates):
            path = args.out.with_name(f"{args.out.stem}_stage_{i}{args.out.suffix}")
            image.save(path)
            print(f"Saved {path} ({label})")
    for note in result.notes:
        print(f"Note: {note}")
    if result.is_demo_model:
        print("This is the demo model: its pictures are noise. Set LIFEBOOK_BASE_MODEL to real SD1.5 weights.")
    return 0


def _reporting_errors(work):
    """The work's result, or the exit status after one clear line: 2 bad input, 130 cancelled, 1 other."""
    try:
        return work()
    except EngineInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Cancelled:
        print("cancelled", file=sys.stderr)
        return 130
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _run(engine: Engine, args):
    given = {k: getattr(args, k) for k in ("steps", "guidance", "width", "height", "seed") if getattr(args, k) is not None}
    common = dict(negative_prompt=args.negative, progress=None if args.quiet else _ProgressBar(), **given)
    if args.command == "txt2img":
        return engine.txt2img(args.prompt, adapters=args.adapter, num_images=args.num_images, **common)
    if args.command == "img2img":
        return engine.img2img(args.image, args.prompt, strength=args.strength, adapters=args.adapter,
                              num_images=args.num_images, **common)
    if args.command == "inpaint":
        return engine.inpaint(args.image, args.mask, args.prompt, mask_mode=args.mask_mode,
                              masked_content=args.masked_content, strength=args.strength, mask_blur=args.mask_blur,
                              only_masked=args.only_masked, padding=args.padding, adapters=args.adapter,
                              num_images=args.num_images, **common)
    counts = {len(args.region_adapter), len(args.region_prompt), len(args.region_box)}
    if len(counts) != 1:
        raise EngineInputError("Give one --region-prompt and one --region-box for each --region-adapter.")
    regions = [Region(a, prompt, box, face=True)
               for a, prompt, box in zip(args.region_adapter, args.region_prompt, args.region_box)]
    return engine.compose(args.prompt, regions, scene_adapters=args.scene_adapter,
                          layout_fraction=args.layout_fraction, face_pass=not args.no_face_pass, **common)


def _train(args, engine_options) -> int:
    options = TrainingOptions(
        steps=args.steps, resolution=args.resolution, rank=args.rank, alpha=args.alpha,
        learning_rate=args.learning_rate, batch_size=args.batch_size, checkpoint_every=args.checkpoint_every,
        keep_states=args.keep_states, seed=args.seed, snr_gamma=args.snr_gamma,
        train_text_encoder=args.train_text_encoder, prior_preservation=args.prior_preservation,
        class_images=args.class_images, gradient_checkpointing=args.gradient_checkpointing,
        use_8bit_adam=False if args.no_8bit_adam else None, sample_steps=args.sample_steps,
        sample_resolution=args.sample_resolution, export_kohya=args.kohya,
    )
    bar = None if args.quiet else _TrainingBar()
    trainer = None

    def train():
        nonlocal trainer
        photos = load_photo_folder(args.photos)
        trainer = Trainer(engine_options)
        return trainer.train(photos, token=args.token, class_word=args.class_word, is_person=args.kind == "person",
                             out_dir=args.out, options=options, progress=bar)

    result = _reporting_errors(train)
    if isinstance(result, int):
        return result
    report = result.prepared.report
    for photo in report.photos:
        for problem in photo.problems:
            print(f"Photo {photo.name}: {problem.message}")
    for problem in report.problems:
        print(f"Photos: {problem.message}")
    if result.resumed_from:
        print(f"Resumed from step {result.resumed_from}.")
    for checkpoint in result.checkpoints:
        print(f"Checkpoint step {checkpoint.step}: {checkpoint.folder} (loss {checkpoint.loss:.4f})")
    print(f"Saved {result.adapter_path} ({result.size_bytes / 1e6:.1f} MB, {result.steps} steps)")
    if result.kohya_path:
        print(f"Saved {result.kohya_path} (kohya format)")
    if trainer.is_demo_model:
        print("This is the demo model: it learns nothing useful. Set LIFEBOOK_BASE_MODEL to real SD1.5 weights.")
    return 0


class _TrainingBar:
    """Training progress on stderr: stage, step, loss and time left; a line per checkpoint."""

    def __call__(self, update):
        if update.stage == "checkpoint":
            print(f"\ncheckpoint at step {update.step}", file=sys.stderr, flush=True)
            return
        done = update.step / update.total if update.total else 0
        loss = f"  loss {update.loss:.4f}" if update.loss is not None else ""
        eta = f"  ~{update.eta_seconds:4.0f}s left" if update.eta_seconds is not None else ""
        print(f"\r{update.stage:<12} [{'#' * int(done * 30):<30}] {update.step}/{update.total}{loss}{eta}",
              end="", file=sys.stderr, flush=True)


class _ProgressBar:
    """A one-line progress bar on stderr: stage, steps, and time left."""

    def __init__(self):
        self.started = None

    def __call__(self, update):
        if self.started is None:  # time from the first step, so loading does not skew the estimate
            self.started = time.monotonic() - 1e-9
            self.first_step = update.step - 1
        done = (update.step - self.first_step) / (update.total - self.first_step)
        elapsed = time.monotonic() - self.started
        left = elapsed / done - elapsed if done else 0
        bar = "#" * int(done * 30)
        print(f"\r{update.stage:<20.20} [{bar:<30}] {update.step}/{update.total}  ~{left:4.0f}s left",
              end="" if update.step < update.total else "\n", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
