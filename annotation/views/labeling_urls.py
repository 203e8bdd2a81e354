"""Rater pages: project list (home), labeling page and its task fragments."""

from django.urls import path

from annotation.views import labeling

urlpatterns = [
    path("projects/<int:project_id>/label/", labeling.label_page, name="label"),
    path("projects/<int:project_id>/label/next/", labeling.label_next, name="label-next"),
]
