"""API routes for the training loop: retrain now / policy status, one run's live detail."""

from django.urls import path

from annotation.api import loop

urlpatterns = [
    path("projects/<int:project_id>/retrain/", loop.RetrainApi.as_view(), name="api-retrain"),
    path(
        "projects/<int:project_id>/training-runs/<int:run_id>/",
        loop.TrainingRunDetailApi.as_view(),
        name="api-training-run",
    ),
]
