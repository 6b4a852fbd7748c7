"""Drop Pair.project's own index: the unique (project, content hash) and pair_queue_idx lead with it.

Only the index goes. Django's AlterField would also drop and re-add the foreign key, and re-adding
it validates every pair (a full scan under lock on a pool of millions), so the database side is
the one statement. The index name is Django's for that column on every install and backend.
"""

import django.db.models.deletion
from django.db import migrations, models

INDEX = "annotation_pair_project_id_1f6a0f79"


class Migration(migrations.Migration):
    dependencies = [
        ("annotation", "0008_attribute_proposals"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="pair",
                    name="project",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="pairs",
                        to="annotation.project",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX IF EXISTS "{INDEX}"',
                    reverse_sql=f'CREATE INDEX IF NOT EXISTS "{INDEX}" ON "annotation_pair" ("project_id")',
                ),
            ],
        ),
    ]
