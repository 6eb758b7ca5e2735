"""Deleting one's own account (the web's account page and the API's /api/me/delete/ both call this).

The account leaves every care team. Nothing of the books goes with it: photos and pictures it added stay
(their `uploaded_by`/`created_by` become empty), and so do the invitations it sent. It is refused while the
account is the only owner of a book, because a book must always have someone who decides about it: they
first make someone else owner, or erase the book.
"""

from django.db import transaction
from django.db.models import Exists, OuterRef

from .access import lock_books
from .models import CareTeamMember

OWNER = CareTeamMember.Role.OWNER


class AccountDeletionRefused(Exception):
    def __init__(self, books):
        super().__init__("only owner of: " + ", ".join(str(book.pk) for book in books))
        self.books = books


def books_only_they_own(user):
    """The patients whose only owner is this user."""
    from lifebook.models import Patient

    others = CareTeamMember.objects.filter(patient=OuterRef("pk"), role=OWNER).exclude(user=user)
    owned = CareTeamMember.objects.filter(user=user, role=OWNER).values("patient_id")
    return Patient.objects.filter(pk__in=owned).exclude(Exists(others)).order_by("name", "pk")


def delete_account(user) -> None:
    """Delete `user`, or raise AccountDeletionRefused with the books they alone own."""
    with transaction.atomic():
        lock_books(CareTeamMember.objects.filter(user=user, role=OWNER).values_list("patient_id", flat=True))
        books = list(books_only_they_own(user))
        if books:
            raise AccountDeletionRefused(books)
        user.delete()  # memberships and API tokens go with it (CASCADE); files and rows they made stay (SET_NULL)
