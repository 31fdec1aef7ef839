"""The real URLconf plus one webhook-path view that raises, to see what a client gets from a 500."""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from config.urls import urlpatterns as real_urlpatterns


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("secret-internal-detail in a traceback")


urlpatterns = [path("webhooks/boom", boom), *real_urlpatterns]
