from django.contrib import admin
from django.urls import include, path

from annotation.api.root import ApiDocsView, ApiRootApi, ApiSchemaView
from annotation.api.token import obtain_auth_token
from annotation.views.health import healthz

urlpatterns = [
    path("healthz/", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/", ApiRootApi.as_view(), name="api-root"),
    path("api/", include("annotation.api.urls")),
    path("api/token/", obtain_auth_token, name="api-token"),
    path("api/schema/", ApiSchemaView.as_view(), name="api-schema"),
    path("api/docs/", ApiDocsView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include("annotation.urls")),
]
