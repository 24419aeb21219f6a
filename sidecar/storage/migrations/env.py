"""Alembic environment: runs on the connection the app hands over."""

from alembic import context

from sidecar import tables
from sidecar.storage.database import Base

assert tables.TABLE_MODULES  # every table must be imported before autogenerate compares

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `forewarn init`, which supplies the connection")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
