"""API routes for metrics, dashboards and exports (managers)."""

from django.urls import path

from annotation.api import ai_agreement, insight

urlpatterns = [
    path("projects/<int:project_id>/insight/", insight.InsightApi.as_view(), name="api-insight"),
    path(
        "projects/<int:project_id>/insight/<slug:table>.csv",
        insight.InsightTableCsvApi.as_view(),
        name="api-insight-csv",
    ),
    path(
        "projects/<int:project_id>/exclusions/",
        insight.ExclusionListApi.as_view(),
        name="api-exclusions",
    ),
    path(
        "projects/<int:project_id>/raters/<int:rater_id>/exclusion/",
        insight.RaterExclusionApi.as_view(),
        name="api-rater-exclusion",
    ),
    path(
        "projects/<int:project_id>/ai-agreement/",
        ai_agreement.AIAgreementApi.as_view(),
        name="api-ai-agreement",
    ),
    path("projects/<int:project_id>/exports/", insight.ExportApi.as_view(), name="api-export"),
    path(
        "projects/<int:project_id>/exports/manifest/",
        insight.ExportManifestApi.as_view(),
        name="api-export-manifest",
    ),
]
