"""The example book from the product brief: Juan Pacheco, born in Madrid in 1944."""

from django.conf import settings
from django.db import transaction

from accounts.models import CareTeamMember, User

from .models import Chapter, LifeStage, Memory, Patient, Subject

DEMO_CAREGIVER = "demo-caregiver"
DEMO_THERAPIST = "demo-therapist"

# (key, kind, name, relationship, life stage, class word)
SUBJECTS = [
    ("juan_young", "person", "Juan", "himself, young", LifeStage.YOUTH, "man"),
    ("juan_adult", "person", "Juan", "himself, as an adult", LifeStage.ADULTHOOD, "man"),
    ("juan_old", "person", "Juan", "himself, today", LifeStage.OLD_AGE, "man"),
    ("ana", "person", "Ana", "his mother", "", "woman"),
    ("basilica", "place", "The basilica", "the town basilica in Colmenar Viejo", "", "church"),
    ("kio", "place", "Torres KIO", "the towers near his home in Madrid", "", "towers"),
    ("dog", "pet", "His dog", "adopted when he retired", "", "dog"),
    ("living_room", "place", "The living room", "redecorated like the one in Friends", "", "living room"),
]

# chapter (title, life stage) -> memories (title, caption, scene, subject keys)
CHAPTERS = [
    (("Youth", LifeStage.YOUTH), [
        ("Growing up in Colmenar Viejo", "Juan as a boy in Colmenar Viejo, the town where he grew up.",
         "a boy playing in the streets of a small Spanish town in the 1950s", ["juan_young"]),
        ("With his mother Ana", "Juan with his mother Ana, who taught chemistry at the university.",
         "a mother and her son smiling together at home", ["juan_young", "ana"]),
        ("His father Alfredo", "Juan's father Alfredo sold houses.",
         "a man in a suit showing a house", []),
        ("Sundays at the basilica", "Juan's favourite place: the basilica in Colmenar Viejo.",
         "a young man standing in front of a stone basilica on a sunny day", ["juan_young", "basilica"]),
        ("Running with the athletics team", "Juan ran on an athletics team.",
         "a young runner on an athletics track", ["juan_young"]),
        ("Painting", "Juan loved to paint.", "a young man painting at an easel", ["juan_young"]),
    ]),
    (("Adulthood", LifeStage.ADULTHOOD), [
        ("Studying chemistry", "Juan studied chemistry, like his mother Ana.",
         "a student in a university chemistry laboratory", ["juan_adult"]),
        ("Thirty-six years at the laboratory", "Juan worked for 36 years in a research laboratory in Madrid.",
         "a chemist in a white coat working in a research laboratory", ["juan_adult"]),
        ("Home near the Torres KIO", "Juan lived near the Torres KIO in Madrid.",
         "a man walking in Madrid with the leaning Torres KIO behind him", ["juan_adult", "kio"]),
        ("Hiking in the mountains", "Juan loved walking in the mountains.",
         "a man hiking on a mountain path", ["juan_adult"]),
    ]),
    (("Old age", LifeStage.OLD_AGE), [
        ("A dog of his own", "Juan adopted a dog when he retired.",
         "an old man walking in the mountains with his dog", ["juan_old", "dog"]),
        ("A living room like in Friends", "Juan had his living room redecorated like the one in Friends.",
         "an old man relaxing on a sofa in a colourful living room", ["juan_old", "living_room"]),
        ("Chess and books", "Juan plays chess and reads at his care home.",
         "an old man playing chess by a window", ["juan_old"]),
    ]),
]


def demo_password() -> str:
    return settings.LIFEBOOK_DEMO_PASSWORD


@transaction.atomic
def load_demo() -> Patient:
    """Create the demo accounts and Juan's book. Running it again changes nothing."""
    caregiver = _user(DEMO_CAREGIVER, "Marta", "marta@example.com")
    therapist = _user(DEMO_THERAPIST, "Laura", "laura@example.com")

    patient = Patient.objects.filter(care_team__user=caregiver, name="Juan Pacheco").first()
    if patient is None:
        patient = Patient.objects.create(
            name="Juan Pacheco", preferred_name="Juan", birth_year=1944,
            notes="Born in Madrid in 1944, grew up in Colmenar Viejo. Lives in a care home; enjoys chess and reading.",
            photo_consent_by=caregiver, photo_consent_at=caregiver.date_joined,
            photo_consent_note="Juan himself, with his daughter Marta present",
        )
    CareTeamMember.objects.get_or_create(patient=patient, user=caregiver, defaults={"role": "owner"})
    CareTeamMember.objects.get_or_create(patient=patient, user=therapist, defaults={"role": "therapist"})

    subjects = {}
    for key, kind, name, relationship, stage, class_word in SUBJECTS:
        subjects[key], _ = Subject.objects.get_or_create(
            patient=patient, name=name, life_stage=stage,
            defaults={"kind": kind, "relationship": relationship, "class_word": class_word},
        )
    for (chapter_title, stage), memories in CHAPTERS:
        chapter = Chapter.objects.filter(patient=patient, title=chapter_title).first()
        if chapter is None:
            chapter = Chapter(patient=patient, title=chapter_title, life_stage=stage)
            chapter.save()
        for title, caption, scene, keys in memories:
            if Memory.objects.filter(chapter=chapter, title=title).exists():
                continue
            memory = Memory(chapter=chapter, title=title, description=caption, scene=scene)
            memory.save()
            memory.subjects.set([subjects[k] for k in keys])
    return patient


def make_demo_pictures(patient: Patient) -> int:
    """A chosen picture for each of the book's memories that has none, so a newcomer's first reader is not blank.

    Each is an ordinary picture job (with the demo recipe of generation.recipes: 128 px, 12 steps, about a
    second on a small CPU) run here, through the worker's own code (generation.runner), since `make run`
    loads the demo before its workers start; the job's queued message then finds it done and does nothing.
    Only with the demo model: a real one would take minutes a picture, so there the caregiver makes them.
    Returns how many were made."""
    from generation import jobs, runner
    from generation.recipes import uses_demo_model

    from .book_cache import book_changed

    memories = list(Memory.objects.filter(chapter__patient=patient, chosen_image__isnull=True).exclude(scene="")
                    .order_by("pk"))
    if not memories or not uses_demo_model():
        return 0
    made = 0
    for memory in memories:
        job = jobs.submit_generation(memory, num_images=1, seed=memory.pk)
        runner.run_generation_job(job.pk)
        picture = job.results.first()
        if picture is not None:
            Memory.objects.filter(pk=memory.pk).update(chosen_image=picture)
            made += 1
    book_changed(patient.pk)  # update() sends no signal
    return made


def _user(username, first_name, email) -> User:
    user, created = User.objects.get_or_create(
        username=username, defaults={"first_name": first_name, "email": email}
    )
    if created:
        user.set_password(demo_password())
        user.save(update_fields=["password"])
    return user
