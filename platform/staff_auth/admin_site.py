"""The admin site staff use (installed as `admin.site` by apps.StaffAdminConfig): its login asks
for a second factor, and where STAFF_TWO_FACTOR_REQUIRED only a session that passed one is staff.
Its own page, /admin/two-factor/, lets staff replace their authenticator and backup codes."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.urls import path

from staff_auth.forms import StaffLoginForm
from staff_auth.views import two_factor_page


class StaffAdminSite(admin.AdminSite):
    login_form = StaffLoginForm
    login_template = "admin/staff_auth/login.html"

    def has_permission(self, request) -> bool:
        # A session that logged in with a password alone (a force_login, another login view) is
        # not staff here: django-otp's middleware tells whether it passed a second factor.
        if not super().has_permission(request):
            return False
        return not settings.STAFF_TWO_FACTOR_REQUIRED or request.user.is_verified()

    def each_context(self, request):
        # The index links to Flower where the admin serves it (FLOWER_URL, config/urls.py).
        return {**super().each_context(request), "flower_in_admin": bool(settings.FLOWER_URL)}

    def login(self, request, extra_context=None):
        extra_context = {"two_factor_required": settings.STAFF_TWO_FACTOR_REQUIRED, **(extra_context or {})}
        return super().login(request, extra_context)

    def get_urls(self):
        return [
            path("two-factor/", self.admin_view(two_factor_page), name="two_factor"),
            *super().get_urls(),
        ]
