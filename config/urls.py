from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from annotation.auth import LockoutLoginView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", LockoutLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Interactive docs from the schema; Swagger UI and Redoc are served from drf-spectacular-sidecar's static files.
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    path("api/", include("annotation.api_urls")),
    path("api/", include("curation.api_urls")),
    path("api/", include("rewardmodel.api_urls")),
    path("models/", include("rewardmodel.urls")),
    path("curation/", include("curation.urls")),
    path("judges/", include("curation.judges.urls")),
    path("", include("annotation.urls")),
]
