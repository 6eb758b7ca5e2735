from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from .models import CareTeamMember, Invitation, User


class MembershipInline(admin.TabularInline):
    model = CareTeamMember
    extra = 0
    autocomplete_fields = ["patient"]


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ["username", "email", "first_name", "last_name", "is_staff", "is_active", "last_login"]
    inlines = [MembershipInline]


@admin.register(CareTeamMember)
class CareTeamMemberAdmin(admin.ModelAdmin):
    list_display = ["user", "patient", "role", "added_at"]
    list_filter = ["role"]
    search_fields = ["user__username", "user__email", "patient__name"]
    list_select_related = ["user", "patient"]
    autocomplete_fields = ["user", "patient"]


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["email", "patient", "role", "invited_by", "created_at", "accepted_at", "accepted_by"]
    list_filter = ["role"]
    search_fields = ["email", "patient__name", "invited_by__username", "accepted_by__username"]
    list_select_related = ["patient", "invited_by", "accepted_by"]
    autocomplete_fields = ["patient", "invited_by", "accepted_by"]
    # The token (the key in the emailed link) is not editable, so the admin never shows it.
