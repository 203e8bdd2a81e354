"""Reads for the managers' pages: judgments -> numpy arrays (SQL), statistics (numpy), cache.

``arrays`` holds the only queries over judgments (``values_list`` fetched in one round trip,
never ORM objects); ``sections`` turns arrays into the dashboard's tables; ``dashboard``
assembles them and caches the result (see :func:`annotation.insight.dashboard.insight_refresh`).
"""
