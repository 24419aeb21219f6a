"""The `forewarn` command line: set up an instance, serve, and operate it."""

from __future__ import annotations

import sys
from typing import Any

import click
from gunicorn.app.base import BaseApplication
from sqlalchemy import select

from sidecar import create_app, gunicorn_conf
from sidecar.audit import writer as audit
from sidecar.cli import audit as audit_commands
from sidecar.cli import connectors as connector_commands
from sidecar.cli import notifications as notification_commands
from sidecar.cli import register as register_commands
from sidecar.cli import sessions as sessions_commands
from sidecar.cli import sync as sync_commands
from sidecar.cli.context import BadInput, Context, fail_cleanly, pass_context
from sidecar.identity.launch import mint_launch_token
from sidecar.register.demo import seed
from sidecar.settings import Settings
from sidecar.storage.crypto import KeyRing
from sidecar.storage.database import Database, describe
from sidecar.storage.keys import KeyFiles, ensure_keys
from sidecar.tables import confidential_models


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--instance",
    envvar="FOREWARN_INSTANCE",
    default=None,
    help="Instance directory (keys, SQLite database). Default ./instance.",
)
@click.option(
    "--config",
    envvar="FOREWARN_CONFIG",
    default=None,
    type=click.Path(dir_okay=False),
    help="Settings file, e.g. one of config/examples/. Default config/forewarn.toml.",
)
@click.pass_context
def cli(ctx: click.Context, instance: str | None, config: str | None) -> None:
    """Forewarn: the warning-flag register beside the council's CRM."""
    ctx.obj = Context(instance, config)


@cli.command()
@click.option("--demo", is_flag=True, help="Mark the instance as a demo and add demo data.")
@pass_context
@fail_cleanly
def init(ctx: Context, demo: bool) -> None:
    """Create or migrate the schema and create any keys that are absent."""
    settings = ctx.settings()
    instance = settings.instance_dir
    instance.mkdir(parents=True, exist_ok=True, mode=0o700)
    if demo:
        if settings.deployment.production:
            raise BadInput("refusing --demo: deployment.production is set in the config")
        (instance / "DEMO").touch()
        settings = ctx.settings()
    for what in ensure_keys(KeyFiles.of(instance), demo=demo):
        click.echo(f"created {what}")
    database = Database(settings.database_url)
    try:
        database.migrate(KeyRing.load(KeyFiles.of(instance).data_keys))
    finally:
        database.dispose()
    click.echo(f"schema is current in {_describe(settings)}")
    if demo:
        click.echo(seed(settings))


def _describe(settings: Settings) -> str:
    return describe(settings.database_url)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 256))
@pass_context
@fail_cleanly
def serve(ctx: Context, host: str, port: int, workers: int, threads: int) -> None:
    """Serve the app with gunicorn's threaded workers."""
    settings = ctx.settings()
    app = create_app(settings)
    # Workers are forked from this process: each must open its own database connections
    # (a connection shared across a fork corrupts both ends, and with them audit writes).
    app.extensions["forewarn"].database.dispose()

    class _Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("threads", threads)
            for name, value in gunicorn_conf.SETTINGS.items():
                self.cfg.set(name, value)

        def load(self) -> Any:
            return app

    click.echo(f"Forewarn serving on http://{host}:{port}", err=True)
    _Server().run()


@cli.command()
@click.option("--user", "user_id", required=True, help="Staff user id (as the CRM knows it).")
@click.option("--name", required=True, help="Display name.")
@click.option("--roles", required=True, help="Comma-separated roles, e.g. agent,visiting_officer.")
@click.option(
    "--ttl",
    default=300,
    show_default=True,
    type=click.IntRange(10, 300),
    help="Lifetime in seconds (at most 300).",
)
@pass_context
@fail_cleanly
def token(ctx: Context, user_id: str, name: str, roles: str, ttl: int) -> None:
    """Print a launch token signed with the demo launch key, as a CRM host would mint one."""
    settings = ctx.settings()
    role_list = [r.strip() for r in roles.split(",") if r.strip()]
    roles_known = settings.access.known_roles
    unknown = [r for r in role_list if r not in roles_known]
    if unknown or not role_list:
        raise BadInput(
            f"unknown role {unknown[0]!r}; roles are {', '.join(roles_known)}"
            if unknown
            else "--roles names no role"
        )
    key_path = KeyFiles.of(settings.instance_dir).launch_demo_key
    if not key_path.exists():
        raise click.ClickException(
            f"{key_path} is missing: only a demo instance (`forewarn init --demo`) mints tokens; "
            "in production the CRM host signs them"
        )
    click.echo(
        mint_launch_token(
            key_path.read_bytes(),
            settings.deployment.public_url,
            user_id,
            name,
            role_list,
            ttl,
            issuer=settings.identity.launch_issuer,
        )
    )


@cli.group()
def keys() -> None:
    """Manage the data keys that encrypt confidential fields."""


@keys.command("rotate")
@pass_context
@fail_cleanly
def keys_rotate(ctx: Context) -> None:
    """Add a data key, re-encrypt every confidential field with it; old keys still read."""

    settings = ctx.settings()
    files = KeyFiles.of(settings.instance_dir)
    old = KeyRing.load(files.data_keys)
    new = old.with_new_primary()
    # The ring with both keys is saved first: a crash mid-way leaves every value readable.
    new.save(files.data_keys)
    database = Database(settings.database_url)
    count = 0
    try:
        with database.transaction() as session:
            for model in confidential_models():
                for row in session.execute(select(model)).scalars():
                    for column in model.__encrypted__:
                        if getattr(row, column) is not None:
                            row.seal(new, column, row.unseal(new, column))
                            count += 1
            audit.append(
                session,
                audit.AuditEvent(
                    action="keys.rotate",
                    outcome_reason=f"new primary {new.primary}; {count} values",
                    **ctx.cli_actor(),
                ),
            )
    finally:
        database.dispose()
    click.echo(f"data key {new.primary} is now primary; re-encrypted {count} values")


for _group in (
    audit_commands,
    connector_commands,
    notification_commands,
    register_commands,
    sessions_commands,
    sync_commands,
):
    for _command in _group.COMMANDS:
        cli.add_command(_command)


def main() -> None:
    try:
        cli(prog_name="forewarn")
    except KeyboardInterrupt:
        sys.exit(130)
