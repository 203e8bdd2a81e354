"""Data for the browser tests: tasks whose text exercises the renderer."""

from __future__ import annotations

from annotation.models import Project, Response, Task
from tests.factories import make_task

CODE_ANSWER = (
    "Use a list comprehension:\n\n```python\nsquares = [n * n for n in range(10)]\n"
    "print(squares)\n```\n\nIt is **short** and *readable*."
)
PLAIN_ANSWERS = [
    CODE_ANSWER,
    "A loop works too:\n\n```python\nsquares = []\nfor n in range(10):\n    "
    "squares.append(n * n)\n```\n\nIt is longer but explicit.",
    "Call `map`: `list(map(lambda n: n * n, range(10)))`.",
    "I don't know.",
]
CONVERSATION = [
    {"role": "user", "content": "How do I square the numbers 0 to 9 in Python?"},
    {"role": "assistant", "content": "Do you want a list or a generator?"},
    {"role": "user", "content": "A list, please. Show me the code."},
]


def task_with_text(
    project: Project,
    *,
    kind: str,
    texts: list[str],
    messages: list[dict[str, str]] | None = None,
) -> Task:
    """A task of ``kind`` whose responses say ``texts`` (stored order = position)."""
    task = make_task(project, kind=kind, n_responses=len(texts))
    for tr, text in zip(task.task_responses.order_by("position"), texts, strict=True):
        Response.objects.filter(id=tr.response_id).update(text=text)
    if messages is not None:
        task.prompt.messages = messages
        task.prompt.save(update_fields=["messages"])
    return task
