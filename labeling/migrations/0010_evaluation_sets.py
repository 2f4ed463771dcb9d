import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('labeling', '0009_assignment_public_id'),
    ]

    operations = [
        migrations.CreateModel(
            name='EvaluationSet',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=200, unique=True)),
                ('role', models.CharField(choices=[('test', 'Test'), ('dev', 'Dev')], default='test', max_length=8)),
                ('source', models.CharField(choices=[('processbench', 'Processbench'), ('prm800k', 'Prm800K'), ('stepwise', 'Stepwise')], max_length=16)),
                ('file_name', models.CharField(blank=True, default='', help_text='the imported file', max_length=500)),
                ('sha256', models.CharField(blank=True, default='', help_text='sha256 of the imported file', max_length=64)),
                ('description', models.TextField(blank=True, default='')),
                ('created', models.DateTimeField(auto_now_add=True)),
            ],
            options={
                'ordering': ['name'],
            },
        ),
        migrations.CreateModel(
            name='EvaluationItem',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('position', models.PositiveIntegerField(help_text='order in the imported file')),
                ('subset', models.CharField(db_index=True, help_text='gsm8k, math, olympiadbench, omnimath, ...', max_length=64)),
                ('source_id', models.CharField(help_text="the record's id in its file", max_length=255)),
                ('generator', models.CharField(blank=True, default='', max_length=200)),
                ('problem', models.TextField()),
                ('steps', models.JSONField()),
                ('label', models.IntegerField(help_text='index of the earliest erroneous step, -1 if every step is correct')),
                ('final_answer_correct', models.BooleanField(blank=True, null=True)),
                ('annotation', models.ForeignKey(blank=True, help_text="the labeling it was made from (PRM800K or the project's labels)", null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='labeling.annotation')),
                ('evaluation_set', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='items', to='labeling.evaluationset')),
            ],
            options={
                'ordering': ['evaluation_set', 'position'],
                'constraints': [models.UniqueConstraint(fields=('evaluation_set', 'position'), name='one_item_per_position'), models.UniqueConstraint(fields=('evaluation_set', 'subset', 'source_id'), name='one_item_per_id'), models.CheckConstraint(condition=models.Q(('label__gte', -1)), name='item_label_at_least_minus_one')],
            },
        ),
    ]
