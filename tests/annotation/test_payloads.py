"""Judgment payload validation per task kind (pure)."""

from __future__ import annotations

import pytest

from annotation.errors import ValidationFailed
from annotation.payloads import validate_payload

FLAGS = ["unsafe", "factually wrong"]


def check(kind, raw, order=(11, 22)):
    return validate_payload(kind=kind, raw=raw, display_order=list(order), flag_choices=FLAGS)


def test_pairwise_choice_a_means_the_response_shown_first():
    clean = check("pairwise", {"choice": "A", "strength": 3}, order=(22, 11))
    assert (clean.choice, clean.strength, clean.preferred_response_id) == ("A", 3, 22)
    clean = check("pairwise", {"choice": "B", "strength": 1}, order=(22, 11))
    assert clean.preferred_response_id == 11


@pytest.mark.parametrize("choice", ["tie", "both_bad"])
def test_pairwise_tie_and_both_bad_need_no_strength(choice):
    clean = check("pairwise", {"choice": choice})
    assert clean.preferred_response_id is None
    assert clean.strength is None


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"choice": "A"}, "strength"),
        ({"choice": "A", "strength": 5}, "strength"),
        ({"choice": "A", "strength": True}, "strength"),
        ({"choice": "tie", "strength": 2}, "strength"),
        ({"choice": "C", "strength": 2}, "choice"),
        ({"choice": "A", "strength": 2, "flags": ["rude"]}, "flags"),
        ({"choice": "A", "strength": 2, "time_spent_ms": -1}, "time_spent_ms"),
        ({"choice": "A", "strength": 2, "rationale": 5}, "rationale"),
    ],
)
def test_pairwise_bad_payloads_name_the_field(raw, field):
    with pytest.raises(ValidationFailed) as info:
        check("pairwise", raw)
    assert info.value.field == field


def test_unknown_fields_are_rejected():
    with pytest.raises(ValidationFailed, match="Unknown field"):
        check("pairwise", {"choice": "tie", "winner": "A"})


def test_body_must_be_an_object():
    with pytest.raises(ValidationFailed, match="JSON object"):
        check("pairwise", ["A"])


def test_ranking_accepts_ties_and_requires_a_permutation():
    clean = check("ranking", {"ranking": [[3], [1, 2], 4]}, order=(1, 2, 3, 4))
    assert clean.payload == {"ranking": [[3], [1, 2], [4]]}
    with pytest.raises(ValidationFailed, match="missing \\[4\\]"):
        check("ranking", {"ranking": [[3], [1, 2]]}, order=(1, 2, 3, 4))
    with pytest.raises(ValidationFailed, match="more than once"):
        check("ranking", {"ranking": [[3], [1, 3], [2, 4]]}, order=(1, 2, 3, 4))
    with pytest.raises(ValidationFailed, match="not in this task \\[9\\]"):
        check("ranking", {"ranking": [[3], [1, 2], [4, 9]]}, order=(1, 2, 3, 4))


def test_rating_covers_every_response_once():
    clean = check(
        "rating",
        {
            "ratings": [
                {"response": 11, "thumb": "up", "likert": 6},
                {"response": 22, "thumb": "down"},
            ]
        },
    )
    assert clean.payload["ratings"][1] == {"response": 22, "thumb": "down", "likert": None}
    with pytest.raises(ValidationFailed, match="each of the task's responses"):
        check("rating", {"ratings": [{"response": 11, "thumb": "up"}]})
    with pytest.raises(ValidationFailed, match="one entry per response") as info:
        check("rating", {"ratings": "up"})
    assert info.value.field == "ratings"
    with pytest.raises(ValidationFailed, match="likert"):
        check(
            "rating",
            {
                "ratings": [
                    {"response": 11, "thumb": "up", "likert": 8},
                    {"response": 22, "thumb": "up"},
                ]
            },
        )
    with pytest.raises(ValidationFailed, match="thumb"):
        check(
            "rating",
            {"ratings": [{"response": 11, "thumb": "meh"}, {"response": 22, "thumb": "up"}]},
        )


def test_demonstration_needs_text_and_a_known_base():
    clean = check("demonstration", {"text": "The ideal answer.", "based_on": 11})
    assert (clean.demonstration_text, clean.based_on_id) == ("The ideal answer.", 11)
    with pytest.raises(ValidationFailed, match="must not be empty"):
        check("demonstration", {"text": "   "})
    with pytest.raises(ValidationFailed, match="based_on"):
        check("demonstration", {"text": "x", "based_on": 99})
