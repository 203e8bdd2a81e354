"""Manager pages: dashboards, rater quality, leaderboard, exports."""

from django.urls import path

from annotation.views import ai_feedback, ai_mixing, ai_revisions, manage, runs

urlpatterns = [
    path("", manage.manage_index, name="manage-index"),
    path("projects/<int:project_id>/", manage.overview, name="manage-overview"),
    path("projects/<int:project_id>/raters/", manage.raters, name="manage-raters"),
    path(
        "projects/<int:project_id>/raters/<int:rater_id>/exclusion/",
        manage.rater_exclusion,
        name="manage-rater-exclusion",
    ),
    path("projects/<int:project_id>/leaderboard/", manage.leaderboard, name="manage-leaderboard"),
    path("projects/<int:project_id>/runs/", runs.runs, name="manage-runs"),
    path("projects/<int:project_id>/runs/retrain/", runs.retrain_start, name="manage-retrain"),
    path("projects/<int:project_id>/runs/<int:run_id>/", runs.run_page, name="manage-run"),
    path(
        "projects/<int:project_id>/runs/<int:run_id>/data/", runs.run_data, name="manage-run-data"
    ),
    path(
        "projects/<int:project_id>/ai-feedback/", ai_feedback.ai_feedback, name="manage-ai-feedback"
    ),
    path(
        "projects/<int:project_id>/ai-feedback/constitution/",
        ai_feedback.constitution_edit,
        name="manage-constitution",
    ),
    path(
        "projects/<int:project_id>/ai-feedback/passes/",
        ai_feedback.ai_pass_create,
        name="manage-ai-pass-start",
    ),
    path(
        "projects/<int:project_id>/ai-feedback/passes/<int:pass_id>/retry/",
        ai_feedback.ai_pass_retry_view,
        name="manage-ai-pass-retry",
    ),
    path(
        "projects/<int:project_id>/ai-feedback/passes/<int:pass_id>/revisions/",
        ai_revisions.cai_pass_detail,
        name="manage-cai-revisions",
    ),
    path(
        "projects/<int:project_id>/ai-feedback/mixing/",
        ai_mixing.ai_mixing_save,
        name="manage-ai-mixing",
    ),
    path("projects/<int:project_id>/exports/", manage.exports, name="manage-exports"),
    path(
        "projects/<int:project_id>/exports/download/",
        manage.export_download,
        name="manage-export-download",
    ),
    path(
        "projects/<int:project_id>/csv/<slug:table>/",
        manage.table_download,
        name="manage-table-csv",
    ),
]
