"""Time and waiting in plain words for the job pages: "about 3 minutes left", "2 jobs are ahead of this
one". The estimate itself comes from the trainer (generation.engine.steps.StepTimer)."""

from django.utils.translation import gettext as _
from django.utils.translation import ngettext


def time_left_words(seconds: float | None) -> str:
    """"less than a minute left", "about 3 minutes left", "about 2 hours left"; empty without an estimate."""
    if seconds is None or seconds < 0:
        return ""
    if seconds < 60:
        return _("less than a minute left")
    minutes = round(seconds / 60)
    if minutes < 60:
        return ngettext("about %(count)d minute left", "about %(count)d minutes left", minutes) % {"count": minutes}
    hours = round(seconds / 3600)
    return ngettext("about %(count)d hour left", "about %(count)d hours left", hours) % {"count": hours}


def queue_words(ahead: int) -> str:
    """How a waiting job's place in the queue reads."""
    if ahead <= 0:
        return _("Next in line.")
    return ngettext("%(count)d job is ahead of this one.", "%(count)d jobs are ahead of this one.",
                    ahead) % {"count": ahead}


def jobs_ahead(job) -> int:
    """The jobs of the same queue (trainings, or pictures) the worker takes before this one: those running,
    and those waiting that were asked for earlier."""
    from django.db.models import Q

    from .models import JobState

    earlier = Q(created_at__lt=job.created_at) | Q(created_at=job.created_at, pk__lt=job.pk)
    return type(job).objects.filter(Q(state=JobState.RUNNING) | (Q(state=JobState.QUEUED) & earlier)).count()


def picture_words(picture: int | None, pictures: int | None) -> str:
    """"picture 2 of 4" when pictures are made one after another."""
    if not picture or not pictures or pictures < 2:
        return ""
    return _("picture %(number)d of %(count)d") % {"number": picture, "count": pictures}


def training_words(job) -> str:
    """What a waiting or running training is doing, in one sentence."""
    from .models import JobState

    if job.state == JobState.QUEUED:
        return _("Waiting for the picture computer. %(place)s") % {"place": queue_words(jobs_ahead(job))}
    if job.stage in ("saving checkpoint", "making samples", "checkpoint"):
        return _("Making sample pictures to choose from…")
    if job.stage != "training":
        return _("Getting ready to learn from the photos…")
    left = time_left_words(job.eta_seconds)
    if left:
        return _("Learning from the photos: step %(step)d of %(total)d, %(left)s.") % {
            "step": job.step, "total": job.total_steps, "left": left}
    return _("Learning from the photos: step %(step)d of %(total)d.") % {"step": job.step, "total": job.total_steps}


def pictures_words(job) -> str:
    """What a waiting or running picture job is doing: "Making picture 2 of 4: step 5 of 20."."""
    from .models import JobState

    if job.state == JobState.QUEUED:
        return _("Waiting for the picture computer. %(place)s") % {"place": queue_words(jobs_ahead(job))}
    steps = {"step": job.step, "total": job.total_steps}
    which = picture_words(job.picture, job.pictures)
    if which:
        return _("Making %(picture)s: step %(step)d of %(total)d.") % {"picture": which, **steps}
    if job.pictures > 1:
        return ngettext("Making %(count)d picture together: step %(step)d of %(total)d.",
                        "Making %(count)d pictures together: step %(step)d of %(total)d.",
                        job.pictures) % {"count": job.pictures, **steps}
    return _("Making the picture: step %(step)d of %(total)d.") % steps
