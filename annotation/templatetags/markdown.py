"""``{{ text|markdown }}``: untrusted markdown rendered through the sanitiser."""

from __future__ import annotations

from django import template
from django.utils.safestring import SafeString, mark_safe

from annotation.rendering import render_markdown

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text: object) -> SafeString:
    # Safe to mark: render_markdown escapes raw HTML and passes the result through nh3.
    return mark_safe(render_markdown(str(text or "")))
