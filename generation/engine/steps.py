"""The time-left estimate of a long loop, from its steady steps. Plain Python (no torch, no clock of
its own): the trainer passes `time.monotonic()` readings, tests pass made-up ones."""

from statistics import median

# The first steps are slow (the GPU warms up, the first batch is read): they are left out.
WARM_UP_STEPS = 2
# Only recent steps count: a machine that gets busier or quieter shows within this many steps.
RECENT_STEPS = 50


class StepTimer:
    """Remembers how long each step took and estimates the time left from the median of the recent ones,
    so one slow step (the first, or one that waited while sample pictures were made) does not swing it."""

    def __init__(self, warm_up: int = WARM_UP_STEPS, recent: int = RECENT_STEPS):
        self.warm_up, self.recent = warm_up, recent
        self.durations: list[float] = []
        self._last: tuple[int, float] | None = None  # (step, when it ended)
        self._measured = 0

    def start(self, step: int, at: float) -> None:
        """The loop begins after `step` (0, or the step a resumed run starts from)."""
        self._last = (step, at)

    def step_done(self, step: int, at: float) -> None:
        if self._last is not None and step > self._last[0]:
            self._measured += 1
            if self._measured > self.warm_up:
                self.durations.append((at - self._last[1]) / (step - self._last[0]))
                del self.durations[:-self.recent]
        self._last = (step, at)

    def seconds_left(self, step: int, total: int) -> float | None:
        """None until there are steady steps to go by."""
        if not self.durations:
            return None
        return median(self.durations) * max(total - step, 0)
