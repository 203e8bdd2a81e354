"""The API's body parsers: DRF's, plus the check for text PostgreSQL cannot store.

Set once in ``REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"]``, so every JSON, form and multipart body
is checked before any view or serializer sees it: a NUL or lone surrogate anywhere in the body
(values and keys, at any depth), a non-finite number or nesting deeper than
``textcheck.MAX_DEPTH`` is a 400 naming the field (``{"error": "rationale: contains a NUL
character ...", "field": "rationale"}``) and nothing is written. A body nested so deeply that
the JSON decoder itself runs out of stack is a 400 too, not a 500.

Query strings and the page forms are checked by ``annotation.boundary``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

from rest_framework import parsers

from annotation.boundary import querydict_problem
from annotation.errors import ValidationFailed
from annotation.textcheck import MAX_DEPTH, TextProblem, find_problem


def _refuse(problem: TextProblem | None) -> None:
    if problem is not None:
        field = problem.path or "body"
        raise ValidationFailed(f"{field}: {problem.reason}", field=field)


class JSONParser(parsers.JSONParser):
    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ValidationFailed(
                f"body: the JSON is nested too deeply (at most {MAX_DEPTH} levels).",
                field="body",
            ) from None
        _refuse(find_problem(data))
        return data


class FormParser(parsers.FormParser):
    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        data = super().parse(stream, media_type, parser_context)
        _refuse(querydict_problem(data))
        return data


class MultiPartParser(parsers.MultiPartParser):
    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        parsed = super().parse(stream, media_type, parser_context)
        _refuse(querydict_problem(parsed.data))
        return parsed
