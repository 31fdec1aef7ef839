"""/admin/two-factor/: a staff member's own second factor. Set up a new authenticator (scan the
QR code, confirm with its first code: it then replaces the old one) and issue new backup codes
(shown once). Reached through admin_view, so only a session that passed a second factor (where
one is required) reaches it.

Replacing either takes fresh proof on the same form (staff_auth/forms.py ProofForm): the account's
password and a current code from the authenticator in use (or a backup code). A session alone is
not enough: whoever held a stolen one could otherwise swap in an authenticator of their own, or
read off new backup codes, and keep the account after the session ends. A wrong password or code
is a failed login to django-axes. Starting a set-up (a new, unconfirmed authenticator, shown as a
QR code) changes nothing that signs in, and needs no proof.
"""

from __future__ import annotations

from base64 import b32encode

import django_otp
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django_otp.plugins.otp_totp.models import TOTPDevice

from staff_auth import two_factor
from staff_auth.forms import ProofForm

PENDING = "staff_auth_pending_device"


def two_factor_page(request: HttpRequest) -> HttpResponse:
    user = request.user
    context = {
        **admin.site.each_context(request),
        "title": "Two-factor authentication",
        "enrolled": two_factor.has_second_factor(user),
        "backup_codes_left": two_factor.backup_codes_left(user),
        "code_needed": two_factor.has_any_factor(user),
    }
    if request.method == "POST":
        step = request.POST.get("step")
        if step == "start":
            device = two_factor.start_enrolment(user)
            request.session[PENDING] = device.pk
            return _render(request, context, pending=device)
        if step == "confirm":
            device = TOTPDevice.objects.filter(
                user=user, pk=request.session.get(PENDING), confirmed=False
            ).first()
            if device is None:
                messages.error(request, "Start the set-up again: no new authenticator is waiting.")
                return redirect("admin:two_factor")
            proof = ProofForm(request.POST, request=request, user=user)
            if not proof.is_valid():
                return _render(request, context, pending=device, proof=proof)
            if not two_factor.confirm_enrolment(
                device=device, code=request.POST.get("code", ""), actor=user.get_username()
            ):
                return _render(
                    request,
                    context,
                    pending=device,
                    code_error="That code is not the current one: try again.",
                )
            request.session.pop(PENDING, None)
            django_otp.login(request, device)  # the session's old device is gone: verified by the new one
            messages.success(request, "Your new authenticator is set up; the old one no longer works.")
            return redirect("admin:two_factor")
        if step == "backup_codes":
            proof = ProofForm(request.POST, request=request, user=user)
            if not proof.is_valid():
                return _render(request, context, backup_proof=proof)
            codes = two_factor.new_backup_codes(user, actor=user.get_username())
            return _render(request, {**context, "backup_codes_left": len(codes)}, backup_codes=codes)
    return _render(request, context)


def _render(request: HttpRequest, context: dict, **extra) -> HttpResponse:
    pending = extra.get("pending")
    if pending is not None:
        extra["qr_svg"] = two_factor.qr_svg(pending)
        extra["secret"] = b32encode(pending.bin_key).decode()  # for apps that cannot scan
    return TemplateResponse(request, "admin/staff_auth/two_factor.html", {**context, **extra})
