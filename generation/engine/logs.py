"""Quieter libraries for people and logs: the CLI, the benchmark and (later) the worker use this."""


def quiet_library_logs() -> None:
    """Silence diffusers' and transformers' loading chatter and progress bars (errors still show)."""
    import warnings

    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.set_verbosity_error()
    diffusers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*torchvision.*")
