"""What every command shares: the instance context and one-line failures with exit codes."""

from __future__ import annotations

import getpass
from collections.abc import Callable
from functools import wraps
from typing import Any

import click

from sidecar.runtime import StartupError
from sidecar.settings import Settings, SettingsError, load_settings
from sidecar.storage.crypto import KeyRingError
from sidecar.storage.database import StorageError


class BadInput(click.ClickException):
    """Bad input on the command line: exit code 2."""

    exit_code = 2


def fail_cleanly(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn known failures into one line on stderr: exit 2 for bad input, 1 otherwise."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except SettingsError as exc:
            raise BadInput(str(exc)) from None
        except (StartupError, StorageError, KeyRingError) as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper


class Context:
    """The instance a command works on, named by --instance or FOREWARN_INSTANCE, and its
    settings file, named by --config or FOREWARN_CONFIG."""

    def __init__(self, instance: str | None, config: str | None = None) -> None:
        self.instance = instance
        self.config = config

    def settings(self) -> Settings:
        return load_settings(self.config, instance_dir=self.instance)

    def cli_actor(self) -> dict[str, str]:
        user = getpass.getuser()
        return {"actor_id": f"cli:{user}", "actor_name": user, "actor_roles": "cli", "via": "cli"}


pass_context = click.make_pass_decorator(Context)
