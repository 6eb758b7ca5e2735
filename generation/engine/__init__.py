"""Lifebook's picture engine: pure PyTorch + diffusers + peft, no Django.

    from generation.engine import Engine, EngineOptions, Adapter
    engine = Engine(EngineOptions(base_model="tiny"))
    result = engine.txt2img("a photo of an old man walking his dog", seed=1)
    result.image.save("out.png"); print(result.parameters)

Names are imported on first use, so `generation.engine.checks` (the input checks a web process runs
before a job is queued) does not load torch.
"""

from importlib import import_module

_HOMES = {
    "Engine": "engine", "Progress": "engine", "Result": "engine",
    "Adapter": "options", "EngineOptions": "options", "Region": "options",
    "Cancelled": "errors", "EngineConfigError": "errors", "EngineError": "errors", "EngineInputError": "errors",
}

__all__ = sorted(_HOMES)


def __getattr__(name):
    if name in _HOMES:
        return getattr(import_module(f".{_HOMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
