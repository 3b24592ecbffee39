"""The `liteshift` command line: everything the operator does, by hand, with no cluster."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from liteshift import __version__
from liteshift.errors import LiteshiftError

# Subcommands live one per module and are imported only when used, so `liteshift --help`
# stays fast and a command's heavy dependencies (kopf, uvicorn) load only for that command.
COMMANDS: dict[str, str] = {
    "backup": "liteshift.cli.backup:backup",
    "demo": "liteshift.cli.demo:demo",
    "migrate": "liteshift.cli.migrate:migrate",
    "operator": "liteshift.cli.operator:operator",
    "promote": "liteshift.cli.promote:promote",
    "serve": "liteshift.cli.serve:serve",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *COMMANDS])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS:
            module_name, attr = COMMANDS[cmd_name].split(":")
            command = getattr(importlib.import_module(module_name), attr)
            assert isinstance(command, click.Command)
            return command
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LiteshiftError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="liteshift")
def main() -> None:
    """liteshift: SQLite-first data stores with verified, online promotion to Postgres."""
