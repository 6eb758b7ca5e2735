"""Care teams and your own account in the API, through the same services as the web pages.

Nobody is added to a team directly: `POST /api/care-team/` sends an invitation by email, exactly as the care-team
page does, and answers 202 with the waiting invitation whether or not the address has an account. Owners list
and withdraw waiting invitations at /api/care-team-invitations/. /api/me/ is the account itself; deleting it
needs the password, as on the web.
"""

from django.contrib.auth import authenticate
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view, inline_serializer
from rest_framework import exceptions, mixins, serializers, status
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from lifebook.api.base import Scoped, ScopedViewSet
from lifebook.api.serializers import ScopedRelations, StrictInput
from lifebook.models import Patient

from . import access, invitations
from .deletion import AccountDeletionRefused, delete_account
from .models import CareTeamMember, Invitation

NOT_FOUND = {404: OpenApiTypes.OBJECT}
LIST_ERRORS = {400: OpenApiTypes.OBJECT, 404: OpenApiTypes.OBJECT}
WRITE_ERRORS = {400: OpenApiTypes.OBJECT, 403: OpenApiTypes.OBJECT, 404: OpenApiTypes.OBJECT}
BY_PATIENT = OpenApiParameter("patient", int, description="Only this patient's.")


class CareTeamMemberSerializer(StrictInput, ScopedRelations, serializers.ModelSerializer):
    user = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = CareTeamMember
        fields = ["id", "patient", "user", "role", "added_at"]
        read_only_fields = ["added_at"]


class InviteSerializer(StrictInput, ScopedRelations, serializers.Serializer):
    explained = {"user_identifier": gettext_lazy("People are invited by email address: send “email”. Nobody joins "
                                                 "a care team without saying yes.")}

    patient = serializers.PrimaryKeyRelatedField(queryset=Patient.objects.all(), help_text="The book's patient.")
    email = serializers.EmailField(max_length=254, help_text="Their email address: the invitation is for it alone.")
    role = serializers.ChoiceField(choices=CareTeamMember.Role.choices, default=CareTeamMember.Role.CAREGIVER)


class InvitationSerializer(serializers.ModelSerializer):
    invited_by = serializers.CharField(source="invited_by.username", read_only=True, allow_null=True, default=None)
    expires_at = serializers.DateTimeField(read_only=True)
    expired = serializers.BooleanField(source="is_expired", read_only=True,
                                       help_text="Its link no longer works; invite them again for a new one.")

    class Meta:
        model = Invitation
        # Never the token: it is the key in the emailed link.
        fields = ["id", "patient", "email", "role", "invited_by", "created_at", "expires_at", "expired"]
        read_only_fields = fields


def _require_owner(user, patient):
    access.get_patient_for(user, patient.pk)  # 404 when not visible
    if not access.can_manage_team(user, patient):
        raise exceptions.PermissionDenied(_("Only the book's owner can change its care team."))


@extend_schema_view(
    list=extend_schema(description="Care-team members of the patients you see.",
                       responses={200: CareTeamMemberSerializer(many=True), **LIST_ERRORS},
                       parameters=[BY_PATIENT]),
    create=extend_schema(
        description="Invite someone to a care team by email (owners only). Nobody is added directly: they get an "
                    "email with a link, and join when they say yes with an account that uses that address. The "
                    "answer is 202 with the waiting invitation (its URL in Location), whether or not the address "
                    "has an account. 503 when the email could not be sent (nothing is kept).",
        request=InviteSerializer,
        responses={202: InvitationSerializer, **WRITE_ERRORS, 503: OpenApiTypes.OBJECT}),
    retrieve=extend_schema(description="One membership.", responses={200: CareTeamMemberSerializer, **NOT_FOUND}),
    update=extend_schema(description="Change a member's role (owners only).",
                         responses={200: CareTeamMemberSerializer, **WRITE_ERRORS}),
    partial_update=extend_schema(description="Change a member's role (owners only).",
                                 responses={200: CareTeamMemberSerializer, **WRITE_ERRORS}),
    destroy=extend_schema(description="Take someone off the care team (owners only; a book keeps one owner).",
                          responses={204: None, **WRITE_ERRORS}),
)
class CareTeamViewSet(ScopedViewSet):
    queryset = CareTeamMember.objects.all()
    serializer_class = CareTeamMemberSerializer
    related = ("user", "patient")
    filters = (("patient", "patient_id"),)

    def create(self, request, *args, **kwargs):
        body = InviteSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        patient = body.validated_data["patient"]
        _require_owner(request.user, patient)
        try:
            invitation = invitations.invite(request, patient, body.validated_data["email"],
                                            body.validated_data["role"])
        except invitations.EmailNotSent as exc:
            return Response({"detail": exc.message}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        except access.TeamChangeRefused as exc:
            raise exceptions.ValidationError({"email": [exc.message]})
        location = reverse("api:care-team-invitation-detail", args=[invitation.pk], request=request)
        return Response(InvitationSerializer(invitation).data, status=status.HTTP_202_ACCEPTED,
                        headers={"Location": location})

    def perform_update(self, serializer):
        member = serializer.instance
        _require_owner(self.request.user, member.patient)
        if serializer.validated_data.get("patient", member.patient) != member.patient:
            raise exceptions.ValidationError({"patient": [_("A membership stays with its patient.")]})
        try:
            access.change_role(member, serializer.validated_data.get("role", member.role))
        except access.TeamChangeRefused as exc:
            raise exceptions.ValidationError({"role": [exc.message]})

    def perform_destroy(self, instance):
        _require_owner(self.request.user, instance.patient)
        try:
            access.remove_from_team(instance)
        except access.TeamChangeRefused as exc:
            raise exceptions.ValidationError({"detail": [exc.message]})


@extend_schema_view(
    list=extend_schema(description="Waiting invitations of the books you own (expired ones too, marked).",
                       responses={200: InvitationSerializer(many=True), **LIST_ERRORS}, parameters=[BY_PATIENT]),
    retrieve=extend_schema(description="One waiting invitation (owners only).",
                           responses={200: InvitationSerializer, **NOT_FOUND}),
    destroy=extend_schema(description="Withdraw a waiting invitation: its link stops working (owners only).",
                          responses={204: None, **NOT_FOUND}),
)
class InvitationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, Scoped):
    """Only the owners of a book see its invitations (as on the web); for anyone else they do not exist (404)."""

    queryset = Invitation.objects.all()
    serializer_class = InvitationSerializer
    related = ("invited_by",)
    filters = (("patient", "patient_id"),)

    def scoped(self, model):
        return Invitation.objects.filter(patient__in=access.patients_managed_by(self.request.user),
                                         accepted_at__isnull=True)


class MyMembershipSerializer(serializers.ModelSerializer):
    patient_name = serializers.CharField(source="patient.display_name", read_only=True)

    class Meta:
        model = CareTeamMember
        fields = ["id", "patient", "patient_name", "role"]
        read_only_fields = fields


class MeSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    username = serializers.CharField(read_only=True)
    first_name = serializers.CharField(read_only=True)
    last_name = serializers.CharField(read_only=True)
    email = serializers.CharField(read_only=True, help_text="Empty until an address is confirmed from its email.")
    care_teams = MyMembershipSerializer(many=True, read_only=True, help_text="The care teams you are on.")


class PasswordSerializer(StrictInput, serializers.Serializer):
    password = serializers.CharField(write_only=True, trim_whitespace=False, help_text="Your account's password.")


class MeView(APIView):
    @extend_schema(description="Your account and the care teams you are on.", responses={200: MeSerializer})
    def get(self, request):
        user = request.user
        teams = user.care_teams.select_related("patient").order_by("patient__name", "pk")
        return Response(MeSerializer({**{name: getattr(user, name) for name in
                                         ("id", "username", "first_name", "last_name", "email")},
                                      "care_teams": teams}).data)


ONLY_OWNER = inline_serializer("OnlyOwner", {
    "detail": serializers.CharField(),
    "books": serializers.ListField(child=serializers.IntegerField(), help_text="Patients you alone own."),
})


class MeDeleteView(APIView):
    @extend_schema(
        description="Delete your own account, with your password. You leave every care team; the books and "
                    "everything you added to them stay with their teams, and your API tokens stop working. "
                    "Refused (409) while you are the only owner of a book: first make someone else owner, or erase "
                    "the book.",
        request=PasswordSerializer,
        responses={204: None, 400: OpenApiTypes.OBJECT, 409: ONLY_OWNER})
    def post(self, request):
        body = PasswordSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        user = request.user
        # Through authenticate(), so django-axes counts wrong guesses here as it does at login.
        if authenticate(request._request, username=user.get_username(),
                        password=body.validated_data["password"]) != user:
            raise exceptions.ValidationError({"password": [_("That is not your password.")]})
        try:
            delete_account(user)
        except AccountDeletionRefused as refused:
            names = ", ".join(book.display_name for book in refused.books)
            return Response({
                "detail": _("You are the only owner of: %(books)s. A book always needs an owner: first make someone "
                            "else an owner of each, or erase the book.") % {"books": names},
                "books": [book.pk for book in refused.books]}, status=status.HTTP_409_CONFLICT)
        return Response(status=status.HTTP_204_NO_CONTENT)
