"""``POST /api/token/``: DRF's token for a username and password, throttled like every login.

The password check is DRF's ``AuthTokenSerializer`` (``authenticate(request=...)``), where Axes
counts the failure and refuses a locked account or address (``annotation.lockout``). Axes marks
the lockout on DRF's request wrapper, which ``AxesMiddleware`` never sees; so this view turns the
mark into a 429 itself, with ``Retry-After`` and the API's ``{"error": ...}`` body.
"""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings

from annotation.lockout import lockout_message, retry_after_seconds


class LoginThrottled(exceptions.Throttled):
    def __init__(self, wait: int) -> None:
        super().__init__(wait=wait)
        self.detail = exceptions.ErrorDetail(lockout_message(wait), code=self.default_code)


class ObtainAuthTokenApi(ObtainAuthToken):
    # The API's own parsers (DRF's view brings its plain ones): absurd nesting is a 400 here too.
    parser_classes = api_settings.DEFAULT_PARSER_CLASSES

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        valid = serializer.is_valid()
        if getattr(request, "axes_locked_out", False):
            credentials = getattr(request, "axes_credentials", None)
            raise LoginThrottled(retry_after_seconds(request, credentials))
        if not valid:
            raise exceptions.ValidationError(serializer.errors)
        token, _ = Token.objects.get_or_create(user=serializer.validated_data["user"])
        return Response({"token": token.key})


obtain_auth_token = ObtainAuthTokenApi.as_view()
