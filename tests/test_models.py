import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from accounts.models import CareTeamMember
from lifebook.models import Chapter, Memory, MemoryImage, Subject
from tests import factories

pytestmark = pytest.mark.django_db


def test_a_subject_gets_a_rare_token_and_a_class_word_without_anyone_typing_them(patient):
    subject = Subject.objects.create(patient=patient, kind=Subject.Kind.PET, name="Toby")
    assert subject.token.isalpha() and subject.token.islower() and 6 <= len(subject.token) <= 8
    assert subject.class_word == "dog"
    assert "token" not in [f.name for f in Subject._meta.get_fields() if getattr(f, "editable", False)]


def test_tokens_are_unique_across_all_patients():
    tokens = {factories.SubjectFactory().token for _ in range(50)}
    assert len(tokens) == 50


def test_a_token_cannot_be_reused_by_another_subject(patient):
    first = factories.SubjectFactory(patient=patient)
    second = factories.SubjectFactory(patient=patient)
    second.token = first.token
    with pytest.raises(IntegrityError), transaction.atomic():
        second.save()


def test_a_birth_year_must_be_plausible():
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.PatientFactory(birth_year=1066)


def test_a_user_is_on_a_care_team_once():
    membership = factories.MembershipFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        CareTeamMember.objects.create(patient=membership.patient, user=membership.user, role="therapist")


def test_emails_are_unique_regardless_of_case():
    factories.UserFactory(username="a", email="Ana@Example.com")
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.UserFactory(username="b", email="ana@example.com")


def test_many_users_may_leave_email_empty():
    factories.UserFactory(username="a", email="")
    factories.UserFactory(username="b", email="")


def test_new_chapters_and_memories_go_last(patient):
    first = Chapter.objects.create(patient=patient, title="Youth")
    second = Chapter.objects.create(patient=patient, title="Adulthood")
    assert (first.position, second.position) == (0, 1)
    memories = [Memory.objects.create(chapter=first, title=f"m{i}") for i in range(3)]
    assert [m.position for m in memories] == [0, 1, 2]
    assert Memory.objects.create(chapter=second, title="other").position == 0


def test_two_chapters_cannot_share_a_position(patient):
    Chapter.objects.create(patient=patient, title="Youth", position=0)
    with pytest.raises(IntegrityError), transaction.atomic():
        Chapter.objects.create(patient=patient, title="Adulthood", position=0)


def test_a_generated_picture_must_keep_its_seed():
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.MemoryImageFactory(source=MemoryImage.Source.GENERATED, seed=None)


def test_an_uploaded_picture_needs_no_seed():
    image = factories.MemoryImageFactory(source=MemoryImage.Source.UPLOADED, seed=None, parameters={})
    assert not image.is_generated


def test_a_memory_can_only_choose_one_of_its_own_pictures():
    memory = factories.MemoryFactory()
    other = factories.MemoryImageFactory()
    memory.chosen_image = other
    with pytest.raises(ValidationError) as error:
        memory.full_clean()
    assert "chosen_image" in error.value.message_dict


def test_an_inpainted_picture_keeps_its_lineage_within_one_memory():
    parent = factories.MemoryImageFactory()
    child = factories.MemoryImageFactory(memory=parent.memory, parent=parent, source=MemoryImage.Source.INPAINTED)
    assert list(parent.children.all()) == [child]
    stranger = factories.MemoryImageFactory(parent=parent)
    with pytest.raises(ValidationError):
        stranger.full_clean()


def test_deleting_the_chosen_picture_keeps_the_memory():
    image = factories.MemoryImageFactory()
    memory = image.memory
    memory.chosen_image = image
    memory.save()
    image.delete()
    memory.refresh_from_db()
    assert memory.chosen_image is None


def test_hiding_a_memory_keeps_it():
    memory = factories.MemoryFactory(hidden=True)
    assert Memory.objects.filter(pk=memory.pk, hidden=True).exists()


def test_files_are_stored_under_their_patients_folder_with_meaningless_names():
    image = factories.MemoryImageFactory()
    patient_id = image.memory.chapter.patient_id
    assert image.image.name.startswith(f"patients/{patient_id}/memories/{image.memory_id}/")
    assert "x.png" not in image.image.name
