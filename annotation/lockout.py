"""Login throttling: the client address, and the answer a locked-out login gets.

django-axes does the counting (settings: ``AXES_*`` in ``config/settings.py``). Every credential
check on the site goes through ``django.contrib.auth.authenticate(request, ...)``: the login page,
the admin's login and ``/api/token/``. Its first backend, ``AxesStandaloneBackend``, refuses an
account or an address that failed ``AXES_FAILURE_LIMIT`` times within ``AXES_COOLOFF_TIME`` of its
last recorded failure; failures while locked are not recorded, so a lockout ends on time.

The pages' lockout is answered by ``axes.middleware.AxesMiddleware`` through
:func:`lockout_response`; the token endpoint answers it itself (``annotation.api.token``), since
DRF's request wrapper keeps the lockout flag away from the middleware.
"""

from __future__ import annotations

import ipaddress
import math
from datetime import datetime, timedelta
from typing import Any

from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_cool_off, get_failure_limit
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone

LOCKED_MESSAGE = "Too many failed login attempts for this account or from this address."


def client_ip(request: HttpRequest) -> str | None:
    """The address failures are counted against.

    ``REMOTE_ADDR`` unless ``TRUSTED_PROXY_COUNT`` proxies stand in front of the app: then the
    address the outermost of them saw, i.e. the ``TRUSTED_PROXY_COUNT``-th entry of
    ``X-Forwarded-For`` from the right (each proxy appends its peer; whatever the client sent
    itself is further left and ignored). A request that did not pass through them all (too few
    entries) or a malformed entry falls back to ``REMOTE_ADDR``.
    """
    peer = request.META.get("REMOTE_ADDR")
    count: int = settings.TRUSTED_PROXY_COUNT
    if count <= 0:
        return peer
    hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h]
    if len(hops) < count:
        return peer
    try:
        return str(ipaddress.ip_address(hops[-count]))
    except ValueError:
        return peer


def _lock_ends(attempts: Any, limit: int, cool_off: timedelta) -> datetime | None:
    """When the oldest attempts have aged out far enough to bring the count below ``limit``."""
    rows = sorted(attempts.values_list("attempt_time", "failures_since_start"))
    remaining = sum(failures for _, failures in rows)
    ends = None
    for attempt_time, failures in rows:
        if remaining < limit:
            break
        remaining -= failures
        ends = attempt_time + cool_off
    return ends


def retry_after_seconds(request: Any, credentials: dict[str, Any] | None) -> int:
    """Seconds until the lockout refusing this request ends (at least 1).

    ``request`` is a Django ``HttpRequest`` or DRF's ``Request`` around one, already seen by Axes
    (it carries ``axes_attempt_time``, the clock Axes counts with).
    """
    cool_off = get_cool_off(request)
    assert cool_off is not None, "AXES_COOLOFF_TIME is always set (config/settings.py)"
    limit = get_failure_limit(request, credentials)
    now = getattr(request, "axes_attempt_time", None) or timezone.now()
    handler = AxesProxyHandler.get_implementation()
    ends = [
        end
        for attempts in handler.get_user_attempts(request, credentials)  # type: ignore[attr-defined]
        if (end := _lock_ends(attempts, limit, cool_off)) is not None
    ]
    if not ends:
        return max(1, math.ceil(cool_off.total_seconds()))
    return max(1, math.ceil((max(ends) - now).total_seconds()))


def lockout_message(seconds: int) -> str:
    wait = f"{seconds} seconds" if seconds < 120 else f"{math.ceil(seconds / 60)} minutes"
    return f"{LOCKED_MESSAGE} Try again in {wait}."


def lockout_response(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict[str, Any] | None = None,
) -> HttpResponse:
    """429 with ``Retry-After``: a page for the browser forms, ``{"error": ...}`` under /api/."""
    seconds = retry_after_seconds(request, credentials)
    message = lockout_message(seconds)
    response: HttpResponse
    if request.path.startswith("/api/"):
        response = JsonResponse({"error": message}, status=429)
    else:
        context = {"message": message, "login_url": request.path}
        response = render(request, "registration/locked_out.html", context, status=429)
    response["Retry-After"] = str(seconds)
    return response
