"""What every API view shares: scoping to the user's patients, read-only therapists, pagination, throttles.

Scoping is done in `get_queryset()` (DRF applies object permissions to neither lists nor creates):
another family's rows are simply not there, so they get 404. A therapist sees the book and gets 403 on
any change; rows of a memory hidden from them are not there either (`memory_path`). Ids sent in a body
resolve only within what the user sees (serializers.ScopedRelations).
"""

from django.http import Http404
from rest_framework import exceptions, mixins, viewsets
from rest_framework.throttling import ScopedRateThrottle

from accounts.access import can_edit, memories_for, patients_for

READ_ONLY_MESSAGE = "You can look at this book but not change it: ask its owner for a caregiver role."


def require_visible(user, patient):
    if not patients_for(user).filter(pk=patient.pk).exists():
        raise Http404("No such patient.")


def require_edit(user, patient):
    """404 for a patient the user cannot see at all; 403 for one they may only look at."""
    require_visible(user, patient)
    if not can_edit(user, patient):
        raise exceptions.PermissionDenied(READ_ONLY_MESSAGE)


class Scoped(viewsets.GenericViewSet):
    """A model whose rows belong to a patient, reached through `patient_path` (e.g. "subject__patient")."""

    patient_path = "patient"
    # For rows of a memory (the memory itself: "pk"): rows of a memory the user may not see (hidden, for a
    # therapist) are left out, so they get 404 like another family's.
    memory_path: str | None = None
    # (query parameter, lookup) pairs for list filtering, e.g. ("patient", "patient_id").
    filters: tuple[tuple[str, str], ...] = ()

    def scoped(self, model):
        queryset = model.objects.filter(**{f"{self.patient_path}__in": patients_for(self.request.user)})
        if self.memory_path:
            queryset = queryset.filter(**{f"{self.memory_path}__in": memories_for(self.request.user)})
        return queryset

    def get_queryset(self):
        queryset = self.scoped(self.queryset.model).select_related(*getattr(self, "related", ()))
        if self.action == "list":
            for parameter, lookup in self.filters:
                value = self.request.query_params.get(parameter)
                if value not in (None, ""):
                    queryset = queryset.filter(**{lookup: self.filter_value(parameter, lookup, value)})
        return queryset

    def filter_value(self, parameter, lookup, value):
        """Ids are checked here: a database's integers stop at 2**63, and a bad value is a 400, not a 500."""
        if lookup.endswith("_id") or lookup == "pk":
            if not (value.isascii() and value.isdigit()) or int(value) >= 2**63:
                raise exceptions.ValidationError({parameter: [f"“{value}” is not an id."]})
            return int(value)
        choices = getattr(self, "filter_choices", {}).get(parameter)
        if choices is not None and value not in choices:
            raise exceptions.ValidationError({parameter: [f"Choose one of: {', '.join(choices)}."]})
        return value

    def patient_of(self, obj):
        for part in self.patient_path.split("__"):
            obj = getattr(obj, part)
        return obj

    def check_edit(self, obj):
        require_edit(self.request.user, self.patient_of(obj))


class ScopedViewSet(mixins.CreateModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin,
                    mixins.DestroyModelMixin, mixins.ListModelMixin, Scoped):
    """All of list, create, retrieve, update and delete (http_method_names narrows it where needed).
    Changes need an editing role on the row's patient (defined here, so they override the mixins')."""

    def perform_update(self, serializer):
        require_edit(self.request.user, self.patient_of(serializer.instance))
        serializer.save()

    def perform_destroy(self, instance):
        require_edit(self.request.user, self.patient_of(instance))
        instance.delete()


class JobThrottle(ScopedRateThrottle):
    """Job submissions per user (LIFEBOOK_JOB_SUBMISSIONS_RATE): GPUs are shared."""

    scope_attr = "throttle_scope"


class SubmitsJobs:
    """Throttle only the creating action of a job endpoint."""

    throttle_scope = "jobs"

    def get_throttles(self):
        if self.action == "create":
            return [JobThrottle()]
        return super().get_throttles()
