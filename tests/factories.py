import factory

from accounts.models import CareTeamMember, User
from lifebook.models import Chapter, Memory, MemoryImage, Patient, Subject


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ["username"]

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("a-long-test-password")


class PatientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Patient

    name = "Juan Pacheco"
    preferred_name = "Juan"
    birth_year = 1944


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CareTeamMember

    patient = factory.SubFactory(PatientFactory)
    user = factory.SubFactory(UserFactory)
    role = CareTeamMember.Role.CAREGIVER


class SubjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subject

    patient = factory.SubFactory(PatientFactory)
    kind = Subject.Kind.PERSON
    name = "Ana"
    relationship = "his mother"


class ChapterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Chapter

    patient = factory.SubFactory(PatientFactory)
    title = factory.Sequence(lambda n: f"Chapter {n}")


class MemoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Memory

    chapter = factory.SubFactory(ChapterFactory)
    title = factory.Sequence(lambda n: f"Memory {n}")
    description = "Juan with his mother Ana."


class MemoryImageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MemoryImage

    memory = factory.SubFactory(MemoryFactory)
    image = factory.django.ImageField(width=64, height=64, color="blue", format="PNG", filename="x.png")
    source = MemoryImage.Source.GENERATED
    seed = 1234
    parameters = factory.LazyFunction(lambda: {"prompt": "a photo", "steps": 20})
