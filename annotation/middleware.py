"""Security headers the whole site needs."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

# No inline scripts or styles anywhere, the API docs page included (its Swagger UI starts from a
# script file: annotation/api/root.py): model output that slipped past escaping cannot run.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ]
)
# Django's admin has no inline scripts but a few inline styles (change lists, widgets).
ADMIN_POLICY = CONTENT_SECURITY_POLICY.replace(
    "style-src 'self'", "style-src 'self' 'unsafe-inline'"
)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        admin = request.path.startswith("/admin/")
        response.headers.setdefault(
            "Content-Security-Policy", ADMIN_POLICY if admin else CONTENT_SECURITY_POLICY
        )
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response
