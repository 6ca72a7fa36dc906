from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.permissions import IsAuthenticated

from .health import healthz, readyz
from .metrics import metrics

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),  # the admin's language switch (set_language)
    # The schema and its pages need a login or a token, like the API they describe.
    path("api/schema", SpectacularAPIView.as_view(permission_classes=[IsAuthenticated]), name="schema"),
    path(
        "api/docs",
        SpectacularSwaggerView.as_view(url_name="schema", permission_classes=[IsAuthenticated]),
        name="swagger-ui",
    ),
    path(
        "api/redoc",
        SpectacularRedocView.as_view(url_name="schema", permission_classes=[IsAuthenticated]),
        name="redoc",
    ),
    path("", include("communications.api.urls")),
    path("", include("dicts.api.urls")),
    path("", include("id_translations.api.urls")),
    path("", include("telephony.api.urls")),
]

handler404 = "communications_project.errors.not_found"
handler500 = "communications_project.errors.server_error"
