"""API routes for AI feedback: the constitution and AI labeling passes."""

from django.urls import path

from annotation.api import ai_feedback

urlpatterns = [
    path(
        "projects/<int:project_id>/constitution/",
        ai_feedback.ConstitutionApi.as_view(),
        name="api-constitution",
    ),
    path(
        "projects/<int:project_id>/constitution/versions/",
        ai_feedback.ConstitutionVersionsApi.as_view(),
        name="api-constitution-versions",
    ),
    path(
        "projects/<int:project_id>/ai-passes/",
        ai_feedback.AIPassListApi.as_view(),
        name="api-ai-passes",
    ),
    path(
        "projects/<int:project_id>/ai-passes/<int:pass_id>/",
        ai_feedback.AIPassDetailApi.as_view(),
        name="api-ai-pass",
    ),
    path(
        "projects/<int:project_id>/ai-passes/<int:pass_id>/retry/",
        ai_feedback.AIPassRetryApi.as_view(),
        name="api-ai-pass-retry",
    ),
    path(
        "projects/<int:project_id>/ai-passes/<int:pass_id>/revisions/",
        ai_feedback.CAIRevisionsApi.as_view(),
        name="api-cai-revisions",
    ),
]
