"""The boundary check for text that cannot be stored (NUL, lone surrogates, NaN, deep nesting)."""

from __future__ import annotations

import math

from annotation.textcheck import MAX_DEPTH, find_problem, text_problem


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
