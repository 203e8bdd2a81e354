"""Celery glue between the annotation domain and the ``training`` library (see docs/loop.md)."""
