# The annotator tools' models moved to their own app (annotation/tools/, label "tools"). Their
# tables keep their names (Meta.db_table there), so this only removes them from annotation's
# migration state: nothing is done to the database. tools/0001_initial adds them to the tools state.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("annotation", "0006_known_answer_checks"),
        ("tools", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                # Rows that point at others go first, so the state never holds a dangling reference.
                migrations.DeleteModel(name="SearchResultOpened"),
                migrations.DeleteModel(name="EvidenceSnippet"),
                migrations.DeleteModel(name="SearchQuery"),
                migrations.DeleteModel(name="CodeRun"),
                migrations.DeleteModel(name="AIQuery"),
                migrations.DeleteModel(name="CorpusDocument"),
                migrations.DeleteModel(name="Corpus"),
            ],
            database_operations=[],
        ),
    ]
