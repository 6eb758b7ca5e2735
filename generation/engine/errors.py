"""What the engine raises. Callers catch these, never diffusers' own errors."""


class EngineError(Exception):
    """Base class."""


class EngineInputError(EngineError, ValueError):
    """A request the engine cannot run as given; the message says exactly what to change."""


class EngineConfigError(EngineError):
    """The base model or the machine is not set up as the settings say."""


class Cancelled(EngineError):
    """The caller's cancel check said stop; raised within one denoising step."""
