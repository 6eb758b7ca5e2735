import pytest
from django.http import Http404

from accounts.access import can_edit, get_patient_for, patients_for
from tests import factories

pytestmark = pytest.mark.django_db


def test_a_caregiver_sees_only_their_patients(patient, owner, stranger):
    assert list(patients_for(owner)) == [patient]
    assert patient not in patients_for(stranger)


def test_get_patient_for_returns_a_patient_on_the_users_care_team(patient, owner):
    assert get_patient_for(owner, patient.pk) == patient


def test_get_patient_for_is_a_404_for_another_caregiver(patient, stranger):
    with pytest.raises(Http404):
        get_patient_for(stranger, patient.pk)


def test_get_patient_for_is_a_404_for_nonsense_ids(owner):
    for bad in ("abc", None, -1, 10**12):
        with pytest.raises(Http404):
            get_patient_for(owner, bad)


def test_a_therapist_may_view_but_not_edit(patient, therapist):
    assert get_patient_for(therapist, patient.pk) == patient
    with pytest.raises(Http404):
        get_patient_for(therapist, patient.pk, edit=True)
    assert not can_edit(therapist, patient)


def test_an_invited_caregiver_may_edit(patient):
    helper = factories.MembershipFactory(patient=patient, role="caregiver").user
    assert get_patient_for(helper, patient.pk, edit=True) == patient
    assert can_edit(helper, patient)


def test_staff_see_every_patient(patient, stranger):
    admin = factories.UserFactory(username="admin", is_staff=True)
    assert set(patients_for(admin)) == set(patients_for(admin, edit=True)) >= {patient}


def test_inactive_and_anonymous_users_see_nothing(patient, owner):
    from django.contrib.auth.models import AnonymousUser

    owner.is_active = False
    assert not patients_for(owner).exists()
    assert not patients_for(AnonymousUser()).exists()
