from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from .models import CareTeamMember, User


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
