"""The admin app's config that makes StaffAdminSite the default site (INSTALLED_APPS names it in
place of django.contrib.admin). Its own module: apps.py may declare only staff_auth's config."""

from django.contrib.admin.apps import AdminConfig


class StaffAdminConfig(AdminConfig):
    """django.contrib.admin with StaffAdminSite as `admin.site`: every ModelAdmin registered on
    admin.site, and every view wrapped in admin.site.admin_view (/admin/ops/), is behind it."""

    default_site = "staff_auth.admin_site.StaffAdminSite"
