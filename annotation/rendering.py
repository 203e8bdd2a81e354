"""Markdown for untrusted text (model output, prompts, guidelines), safe to put in a page.

Two independent layers, so a bug in one is not a hole:

1. ``markdown-it-py`` with ``html`` off: raw HTML in the source is *text* (escaped), never markup.
   Its link validator already refuses ``javascript:``/``vbscript:``/``file:``/``data:`` URLs.
   Fenced code is highlighted by Pygments (which escapes the code). Images become plain links,
   so model output cannot make the browser fetch anything.
2. ``nh3`` (ammonia) on the result: an allow-list of tags, attributes and URL schemes
   (http, https, mailto). Whatever the first layer lets through that is not on the list goes.

The Content-Security-Policy header (no inline scripts, annotation/middleware.py) is the third.
Rendering is pure and cached by text, so the same response shown to many raters renders once.
"""

from __future__ import annotations

from functools import lru_cache

import nh3
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

MAX_RENDER_CHARS = 100_000  # past this the text is shown escaped, unrendered (worst case ~1 s)

ALLOWED_TAGS = {
    "p", "br", "hr", "em", "strong", "del", "s", "code", "pre", "kbd", "sub", "sup",
    "blockquote", "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6", "a",
    "table", "thead", "tbody", "tr", "th", "td", "div", "span",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "ol": {"start"},
    "span": {"class"},
    "div": {"class"},
    "pre": {"class"},
    "code": {"class"},
}
URL_SCHEMES = {"http", "https", "mailto"}
_FORMATTER = HtmlFormatter(cssclass="highlight", nowrap=True)


def _highlight(code: str, lang: str, _attrs: str) -> str:
    try:
        lexer = get_lexer_by_name(lang.strip().split()[0]) if lang.strip() else None
    except ClassNotFound:
        lexer = None
    if lexer is None:
        return ""  # markdown-it falls back to an escaped <pre><code>
    # Starting with "<pre" tells markdown-it to use this block as is (Pygments escapes the code).
    return f'<pre class="highlight"><code>{highlight(code, lexer, _FORMATTER)}</code></pre>\n'


def _image_as_link(self, tokens, idx, options, env):  # type: ignore[no-untyped-def]
    token = tokens[idx]
    alt = escapeHtml(self.renderInlineAsText(token.children or [], options, env)) or "image"
    src = escapeHtml(str(token.attrGet("src") or ""))
    return f'<a href="{src}">[image: {alt}]</a>'


def _build() -> MarkdownIt:
    md = MarkdownIt(
        "commonmark", {"html": False, "linkify": False, "typographer": False, "breaks": True}
    )
    md.enable(["table", "strikethrough"])
    md.options["highlight"] = _highlight
    md.add_render_rule("image", _image_as_link)
    return md


_MD = _build()


def sanitize_html(html: str) -> str:
    """The allow-list pass (layer 2), usable on its own for any HTML of unknown origin."""
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


@lru_cache(maxsize=2048)
def render_markdown(text: str) -> str:
    """Safe HTML for markdown ``text`` of unknown origin."""
    if not text:
        return ""
    if len(text) > MAX_RENDER_CHARS:
        return f"<pre>{nh3.clean_text(text)}</pre>"
    return sanitize_html(_MD.render(text))
