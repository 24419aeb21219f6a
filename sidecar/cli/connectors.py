"""`forewarn connectors check`: validate each connector's settings and make one harmless call."""

from __future__ import annotations

import os

import click

from connectors import load_connector
from connectors.base import ConnectorConfigError
from sidecar.cli.context import BadInput, Context, fail_cleanly, pass_context


@click.group("connectors")
def connectors_group() -> None:
    """Check the CRM connectors configured in [connectors.NAME]."""


@connectors_group.command("check")
@click.argument("name", required=False)
@pass_context
@fail_cleanly
def connectors_check(ctx: Context, name: str | None) -> None:
    """Validate settings, then call the CRM once (WhoAmI, /limits, a webhook ping).

    Prints one line per connector; exits 1 when any is wrong, naming what.
    """
    settings = ctx.settings()
    configured = settings.connectors
    if not configured:
        raise click.ClickException("no connector is configured ([connectors.NAME] in the config)")
    if name is not None and name not in configured:
        raise BadInput(f"no connector named {name!r}; configured: {', '.join(configured)}")
    failed = 0
    for each in [name] if name else list(configured):
        table = configured[each]
        options = {key: value for key, value in table.items() if key != "kind"}
        try:
            connector = load_connector(each, table["kind"], options, os.environ)
        except ConnectorConfigError as exc:
            click.echo(f"{each} ({table['kind']}): settings: {exc}")
            failed += 1
            continue
        try:
            health = connector.health()
        finally:
            connector.close()
        verdict = "ok" if health.ok else "NOT OK"
        click.echo(f"{each} ({table['kind']}): {verdict}: {health.detail}")
        failed += 0 if health.ok else 1
    if failed:
        raise click.ClickException(f"{failed} of the connectors checked need attention")


COMMANDS = (connectors_group,)
