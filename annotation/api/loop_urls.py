"""API routes for the training loop: retrain now, runs, model versions actions."""

urlpatterns: list = []
