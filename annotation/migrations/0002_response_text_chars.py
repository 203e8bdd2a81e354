"""``Response.text_chars``: the text's length, a stored generated column.

Adding a stored generated column computes it for every existing row (PostgreSQL rewrites the table
in the ``ALTER TABLE``; SQLite copies the rows into the rebuilt table), so the backfill needs no
separate ``UPDATE``, and no later write can leave it missing or stale.
"""

import django.db.models.functions.text
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("annotation", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="response",
            name="text_chars",
            field=models.GeneratedField(
                db_persist=True,
                expression=django.db.models.functions.text.Length("text"),
                output_field=models.PositiveIntegerField(),
            ),
        ),
    ]
