"""API routes for metrics, dashboards and exports (managers)."""

urlpatterns: list = []
