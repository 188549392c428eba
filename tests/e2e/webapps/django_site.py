"""A one-module Django site: settings, views and URLs; ``application`` (WSGI) and ``asgi_application``."""

from __future__ import annotations

import django
from django.conf import settings

if not settings.configured:
    settings.configure(
        DEBUG=False,
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        SECRET_KEY="tests-only",
        MIDDLEWARE=["django.middleware.common.CommonMiddleware"],
        INSTALLED_APPS=[],
        USE_TZ=True,
    )
    django.setup()

from django.core.asgi import get_asgi_application
from django.core.wsgi import get_wsgi_application
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.urls import path

from tests.e2e.webapps import common


def user(request: HttpRequest, user_id: int) -> HttpResponse:
    return HttpResponse(common.load_user(str(user_id)), headers=dict(common.RESPONSE_HEADERS))


def boom(request: HttpRequest) -> HttpResponse:
    common.boom()
    return HttpResponse()


def fail503(request: HttpRequest) -> HttpResponse:
    return HttpResponse("unavailable", status=503)


def stream(request: HttpRequest) -> StreamingHttpResponse:
    return StreamingHttpResponse(common.chunks(), content_type="text/plain")


def healthz(request: HttpRequest) -> HttpResponse:
    return HttpResponse(common.current_trace_id())


urlpatterns = [
    path("users/<int:user_id>", user),
    path("boom", boom),
    path("fail503", fail503),
    path("stream", stream),
    path("healthz", healthz),
]

application = get_wsgi_application()
asgi_application = get_asgi_application()
