"""A partial index of the responses without a model version: (prompt, source).

The dashboard lists a project's import sources from it (an index-only scan) instead of visiting
every page of the response table, where the texts are.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("annotation", "0002_response_text_chars"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="response",
            index=models.Index(
                condition=models.Q(("model_version__isnull", True)),
                fields=["prompt", "source"],
                name="response_source_idx",
            ),
        ),
    ]
