"""API token authentication with the token lookup as one precompiled query.

Same contract as DRF's ``TokenAuthentication`` (header ``Authorization: Token <key>``, 401 for
an unknown key or an inactive user); only the lookup differs (see ``annotation.precompiled``).
"""

from __future__ import annotations

from typing import Any

from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

from annotation.precompiled import user_for_token
from annotation.textcheck import text_problem


class TokenAuthentication(authentication.TokenAuthentication):
    def authenticate_credentials(self, key: str) -> tuple[Any, Token]:
        # A NUL cannot be in any key, and PostgreSQL would refuse it in the lookup (a 500).
        user = None if text_problem(key) else user_for_token(key)
        if user is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        return user, Token(key=key, user=user)
