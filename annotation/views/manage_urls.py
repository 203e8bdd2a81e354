"""Manager pages: dashboards, rater quality, leaderboard, exports."""

urlpatterns: list = []
