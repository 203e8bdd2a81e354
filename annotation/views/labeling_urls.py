"""Rater pages: project list, labeling page."""

urlpatterns: list = []
