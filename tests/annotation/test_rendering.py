"""The sanitiser: untrusted markdown in, HTML that cannot run anything out."""

from __future__ import annotations

import random
import time
from html.parser import HTMLParser

import pytest

from annotation.rendering import MAX_RENDER_CHARS, render_markdown, sanitize_html
from annotation.views.task_view import word_diff

SAFE_TAGS = {
    "p", "br", "hr", "em", "strong", "del", "s", "code", "pre", "kbd", "sub", "sup",
    "blockquote", "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6", "a",
    "table", "thead", "tbody", "tr", "th", "td", "div", "span",
}  # fmt: skip


class Elements(HTMLParser):
    """The real elements and attributes of an HTML string (escaped text is not an element)."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.found: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):  # type: ignore[no-untyped-def]
        self.found.append((tag, attrs))


def executable_parts(html: str) -> list[str]:
    bad = []
    for tag, attrs in Elements(html).found:
        if tag not in SAFE_TAGS:
            bad.append(f"<{tag}>")
        for name, value in attrs:
            if name.startswith("on") or name in {"style", "src", "srcdoc"}:
                bad.append(f"{tag}[{name}]")
            if name == "href" and not (value or "").startswith(("http:", "https:", "mailto:")):
                bad.append(f"{tag}[href={value}]")
    return bad


@pytest.mark.parametrize(
    "source",
    [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "<svg><foreignObject><script>alert(1)</script></foreignObject></svg>",
        "<svg onload=alert(1)>",
        "[x](javascript:alert(1))",
        "[x](JaVaScRiPt:alert(1))",
        "[x](&#106;avascript:alert(1))",
        "[x](data:text/html;base64,PHNjcmlwdD4=)",
        "[x](vbscript:msgbox(1))",
        "![x](javascript:alert(1))",
        "![x](data:image/png;base64,AAAA)",
        '<a href="javascript:alert(1)">x</a>',
        "<iframe src=//evil.example></iframe>",
        "<details open ontoggle=alert(1)>",
        "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
        "[x]: javascript:alert(1)\n\n[ref][x]",
        "<<script>script>alert(1)<</script>/script>",
        "```\n<script>alert(1)</script>\n```",
        "```html\n<img src=x onerror=alert(1)>\n```",
        "`<img src=x onerror=alert(1)>`",
        "<style>body{display:none}</style>",
    ],
)
def test_nothing_executable_survives(source):
    html = render_markdown(source)
    assert executable_parts(html) == [], html


def test_the_checker_itself_sees_live_markup():
    assert executable_parts('<img src=x onerror=alert(1)><a href="javascript:x">y</a>') == [
        "<img>",
        "img[src]",
        "img[onerror]",
        "a[href=javascript:x]",
    ]


def test_raw_html_is_shown_as_text():
    assert render_markdown("<b>bold?</b> <script>alert(1)</script>") == (
        "<p>&lt;b&gt;bold?&lt;/b&gt; &lt;script&gt;alert(1)&lt;/script&gt;</p>\n"
    )


def test_markdown_still_renders():
    html = render_markdown("# Title\n\n**bold** *it* `code`\n\n- one\n- two\n\n> quote")
    for fragment in (
        "<h1>Title</h1>",
        "<strong>bold</strong>",
        "<em>it</em>",
        "<code>code</code>",
        "<li>one</li>",
        "<blockquote>",
    ):
        assert fragment in html


def test_safe_links_kept_with_rel_unsafe_links_dropped():
    html = render_markdown("[ok](https://example.org/a?b=1) [mail](mailto:x@example.org)")
    assert 'href="https://example.org/a?b=1"' in html
    assert 'href="mailto:x@example.org"' in html
    assert 'rel="noopener noreferrer nofollow"' in html
    assert "href" not in render_markdown("[x](data:text/html,hi)").replace("[x]", "")


def test_images_become_links_never_fetched():
    html = render_markdown("![a cat](https://example.org/cat.png)")
    assert "<img" not in html
    assert '<a href="https://example.org/cat.png"' in html
    assert "[image: a cat]" in html


def test_code_is_highlighted_and_escaped():
    html = render_markdown('```python\nif x < 1:\n    print("<b>")\n```')
    assert html.startswith('<pre class="highlight"><code>')
    assert '<span class="k">if</span>' in html
    assert "&lt;b&gt;" in html
    assert "<b>" not in html


def test_unknown_language_is_plain_escaped_code():
    html = render_markdown("```nosuchlang\n<b>x</b>\n```")
    assert "&lt;b&gt;x&lt;/b&gt;" in html
    assert "highlight" not in html


def test_tables_render_without_inline_style():
    html = render_markdown("| a | b |\n|:-|-:|\n| 1 | 2 |")
    assert "<table>" in html
    assert "<td>2</td>" in html
    assert "style" not in html  # the CSP forbids inline styles; alignment is dropped


def test_very_long_text_is_escaped_not_rendered():
    text = "<script>" + "a" * MAX_RENDER_CHARS
    html = render_markdown(text)
    assert html.startswith("<pre>&lt;script&gt;")


def test_sanitize_html_alone_strips_attributes_and_schemes():
    dirty = (
        '<p onclick="x()">hi <a href="javascript:x()">y</a> <span class="k" style="c">z</span></p>'
    )
    assert sanitize_html(dirty) == (
        '<p>hi <a rel="noopener noreferrer nofollow">y</a> <span class="k">z</span></p>'
    )


def test_empty_text():
    assert render_markdown("") == ""


def test_word_diff_marks_changes_and_escapes():
    left, right = word_diff("keep <old> words", "keep <new> words")
    assert left == "keep <del>&lt;old&gt; </del>words"
    assert right == "keep <ins>&lt;new&gt; </ins>words"


def test_word_diff_stays_fast_on_long_repetitive_text():
    rng = random.Random(0)
    vocabulary = ["the", "a", "of", "model", "answer", "code", "x", "y"]
    a = " ".join(rng.choice(vocabulary) for _ in range(2400))
    b = " ".join(rng.choice(vocabulary) for _ in range(2400))
    started = time.perf_counter()
    left, right = word_diff(a, b)
    assert time.perf_counter() - started < 1.0  # was tens of seconds with space tokens
    assert "<del>" in left
    assert "<ins>" in right


def test_word_diff_refuses_huge_texts_quickly():
    left, right = word_diff("word " * 6000, "other " * 6000)
    assert "too long to compare" in left
    assert left == right
