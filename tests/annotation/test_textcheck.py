"""The boundary check for text that cannot be stored (NUL, lone surrogates, NaN, deep nesting)."""

from __future__ import annotations

import math

from annotation.textcheck import (
    MAX_DEPTH,
    find_problem,
    text_problem,
    unreadable_reason,
    unreadable_summary,
)


def test_plain_text_passes():
    assert text_problem("Hello, wörld \t\n 🙂") is None
    assert find_problem({"a": ["b", 1, 2.5, None, True, {"c": "d"}]}) is None


def test_nul_is_named_with_its_position():
    assert "NUL" in text_problem("ab\x00c")
    assert "position 2" in text_problem("ab\x00c")


def test_lone_surrogate_is_named():
    reason = text_problem("x\udc00y")
    assert "U+DC00" in reason
    assert "lone surrogate" in reason


def test_path_of_the_first_problem_in_document_order():
    doc = {"prompt": "fine", "responses": ["ok", "bad\x00", "also\x00bad"]}
    problem = find_problem(doc)
    assert problem.path == "responses[1]"
    assert problem.message().startswith("responses[1]: contains a NUL")


def test_keys_are_checked():
    problem = find_problem({"metadata": {"so\x00urce": 1}})
    assert problem.path == "metadata"
    assert "a key contains a NUL" in problem.reason


def test_non_finite_numbers():
    assert find_problem({"m": {"score": math.nan}}).path == "m.score"
    assert "inf" in find_problem([1.0, math.inf]).reason


def test_depth_limit_without_recursion():
    deep: list = []
    node = deep
    for _ in range(100_000):
        child: list = []
        node.append(child)
        node = child
    problem = find_problem({"metadata": deep})
    assert f"deeper than {MAX_DEPTH}" in problem.reason
    shallow: list = []
    node = shallow
    for _ in range(MAX_DEPTH - 2):
        child = []
        node.append(child)
        node = child
    assert find_problem({"metadata": shallow}) is None


def test_prefix_path():
    assert find_problem("a\x00", path="rationale").path == "rationale"


# Model output a rater can read (unreadable_reason), on hand-made bad outputs.


def test_readable_text_passes_in_any_script_with_emoji():
    for text in (
        "Paris is the capital of France.",
        "Grüße aus Köln — naïve café, 東京は日本の首都です。 Привет! مرحبا 🙂🚀👩‍💻",
        "Line one\n\tindented line two\n",
        "ok\x00 but one NUL in a long enough sentence",  # 1 of 40 characters: stored as U+FFFD
    ):
        assert unreadable_reason(text) is None, text
        assert unreadable_reason(text.encode("utf-8")) is None, text


def test_bytes_that_are_not_utf8_are_invalid():
    assert unreadable_reason(b"caf\xe9 au lait") == "invalid_utf8"  # Latin-1, not UTF-8
    assert unreadable_reason("🙂".encode()[:3]) == "invalid_utf8"  # a character cut in half
    assert unreadable_reason(b"\xff\xfe") == "invalid_utf8"


def test_replacement_characters_and_lone_surrogates_are_invalid():
    assert unreadable_reason("An answer with a broken \ufffd byte in it.") == "invalid_utf8"
    assert unreadable_reason("\ufffd\ufffd\ufffd") == "invalid_utf8"
    assert unreadable_reason("x\udc00y") == "invalid_utf8"


def test_empty_and_whitespace_are_empty():
    for text in ("", " ", "\n\n\t  ", "\u3000", b""):
        assert unreadable_reason(text) == "empty", repr(text)


def test_control_characters_over_a_fifth_are_unreadable():
    assert unreadable_reason("\x01\x02\x03\x1b[0m") == "control_characters"
    assert unreadable_reason("ab\x85\x9fcd") == "control_characters"  # C1: 2 of 6
    assert unreadable_reason("abcd\x07") is None  # 1 of 5 = 20 %: still readable
    assert unreadable_reason("abc\x07") == "control_characters"  # 1 of 4
    assert unreadable_reason("a\n\n\n\t\t\tb") is None  # tab and newline are text


def test_summary_counts_each_reason():
    counts = {"empty": 2, "control_characters": 1, "invalid_utf8": 0}
    text = "3 unreadable candidates dropped (2 empty, 1 control characters)"
    assert unreadable_summary(counts) == text
    assert unreadable_summary({"invalid_utf8": 1}) == (
        "1 unreadable candidate dropped (1 invalid UTF-8)"
    )
    assert unreadable_summary({}) is None
    assert unreadable_summary({"empty": 0}) is None
