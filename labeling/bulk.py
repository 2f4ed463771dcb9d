"""Bulk row writing: COPY on PostgreSQL, batched INSERTs elsewhere. Never a save() per row."""
from django.db import connection


def insert_rows(model, fields, rows):
    """Insert plain tuples into model's table (columns named by `fields`); returns the count."""
    rows = rows if isinstance(rows, list) else list(rows)
    if not rows:
        return 0
    attnames = [model._meta.get_field(f).attname for f in fields]
    columns = [model._meta.get_field(f).column for f in fields]
    table = model._meta.db_table
    if connection.vendor == "postgresql":
        qn = connection.ops.quote_name
        sql = f"COPY {qn(table)} ({', '.join(qn(c) for c in columns)}) FROM STDIN"
        with connection.cursor() as cursor:
            with cursor.cursor.copy(sql) as copy:
                for row in rows:
                    copy.write_row(row)
        return len(rows)
    model.objects.bulk_create([model(**dict(zip(attnames, row))) for row in rows], batch_size=500)
    return len(rows)
