"""Export and Job share one job-row machinery (labeling.models.JobRow): an export's progress becomes
done/total with a heartbeat and a message; a chunk keeps the id of its Celery message; Job.Kind.SELECT
(never used) goes."""
from django.db import migrations, models

SCALE = 1000  # an old export knows only its fraction done: kept as thousandths


def progress_to_counts(apps, schema_editor):
    Export = apps.get_model("labeling", "Export")
    for export in Export.objects.filter(progress__gt=0).only("id", "progress"):
        Export.objects.filter(pk=export.pk).update(done=round(min(export.progress, 1.0) * SCALE), total=SCALE)


def counts_to_progress(apps, schema_editor):
    Export = apps.get_model("labeling", "Export")
    for export in Export.objects.only("id", "status", "done", "total"):
        progress = 1.0 if export.status == "done" else (min(1.0, export.done / export.total) if export.total else 0.0)
        Export.objects.filter(pk=export.pk).update(progress=progress)


class Migration(migrations.Migration):

    dependencies = [
        ('labeling', '0005_active_learning'),
    ]

    operations = [
        migrations.AddField(
            model_name='export',
            name='done',
            field=models.BigIntegerField(default=0),
        ),
        migrations.AddField(
            model_name='export',
            name='total',
            field=models.BigIntegerField(default=0, help_text='items to process (solutions, problems, steps, records)'),
        ),
        migrations.RunPython(progress_to_counts, counts_to_progress),
        migrations.RemoveField(
            model_name='export',
            name='progress',
        ),
        migrations.AddField(
            model_name='export',
            name='heartbeat',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='export',
            name='message',
            field=models.CharField(blank=True, default='', help_text='what it is doing now', max_length=300),
        ),
        migrations.AddField(
            model_name='jobchunk',
            name='celery_task_id',
            field=models.CharField(blank=True, default='', help_text='its latest message', max_length=255),
        ),
        migrations.AlterField(
            model_name='job',
            name='kind',
            field=models.CharField(choices=[('generate', 'Generate'), ('train_selector', 'Train Selector'), ('score', 'Score'), ('retrain', 'Retrain'), ('evaluate', 'Evaluate')], max_length=32),
        ),
        migrations.AlterField(
            model_name='job',
            name='total',
            field=models.BigIntegerField(default=0, help_text='items to process (solutions, problems, steps, records)'),
        ),
    ]
