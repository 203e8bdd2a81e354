"""What the Content-Security-Policy (annotation/middleware.py) would block in a page."""

from __future__ import annotations

from html.parser import HTMLParser

DATA_SCRIPTS = {"application/json", "application/ld+json", "text/template"}


class _Inline(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "script" and "src" not in named and named.get("type") not in DATA_SCRIPTS:
            self.found.append("<script> without src")
        if tag == "style":
            self.found.append("<style>")
        self.found += [f"{tag} {name}=" for name, _ in attrs if name == "style"]
        self.found += [f"{tag} {name}=" for name, _ in attrs if name.startswith("on")]
        self.found += [
            f"{tag} {name}=javascript:"
            for name, value in attrs
            if name in ("href", "src", "action")
            and (value or "").strip().lower().startswith("javascript:")
        ]


def inline_code(html: str) -> list[str]:
    """Inline scripts, styles, style attributes, event handlers and javascript: URLs."""
    parser = _Inline()
    parser.feed(html)
    return parser.found
