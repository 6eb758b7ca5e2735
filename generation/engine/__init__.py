"""Lifebook's picture engine: pure PyTorch + diffusers + peft, no Django.

    from generation.engine import Engine, EngineOptions, Adapter
    engine = Engine(EngineOptions(base_model="tiny"))
    result = engine.txt2img("a photo of an old man walking his dog", seed=1)
    result.image.save("out.png"); print(result.parameters)
"""

from .engine import Adapter, Engine, EngineOptions, PersonRegion, Progress, Result
from .errors import Cancelled, EngineConfigError, EngineError, EngineInputError

__all__ = [
    "Adapter", "Cancelled", "Engine", "EngineConfigError", "EngineError", "EngineInputError",
    "EngineOptions", "PersonRegion", "Progress", "Result",
]
