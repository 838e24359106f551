"""``haprotect token``: the bearer tokens of the service's API.

A token's secret is printed once, when it is made; the catalog keeps only
its SHA-256.
"""

from __future__ import annotations

from typing import Annotated

import typer

from haprotect.cli.app import Group, app, reports_errors, stderr, stdout
from haprotect.cli.catalog_common import CatalogOpt, JsonOpt, dumps, opened, to_json, when

token_app = typer.Typer(
    name="token",
    cls=Group,
    help="Bearer tokens of the service's API, each with a role: viewer (read), operator "
    "(run backups and restores), admin (approve policies, manage tokens).",
    no_args_is_help=True,
)
app.add_typer(token_app, name="token")

NameArg = Annotated[str, typer.Argument(help="The token's name (who or what uses it).")]


@token_app.command("add")
@reports_errors
def add_command(
    name: NameArg,
    role: Annotated[
        str,
        typer.Option("--role", "-r", help="viewer, operator or admin.", show_default=False),
    ],
    catalog: CatalogOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Make a token and print its secret: the only time it is shown.

    Exit status: 0 success, 2 bad usage, 3 unreadable input, 4 component failed, 5 plug-in missing.
    """
    from haprotect.catalog.records import Role
    from haprotect.errors import UsageError

    try:
        chosen = Role(role)
    except ValueError:
        raise UsageError(
            f"unknown role {role!r}", hint="--role viewer, --role operator or --role admin"
        ) from None
    with opened(catalog) as store:
        made = store.add_token(name, chosen)
    if as_json:
        stdout.out(dumps({**to_json(made.token), "secret": made.secret}))
        return
    stdout.out(made.secret)
    stderr.print(
        f"token {name} ({chosen}): the line above is its secret, shown this once; "
        "send it as 'Authorization: Bearer <secret>'",
        markup=False,
    )


@token_app.command("list")
@reports_errors
def list_command(catalog: CatalogOpt = None, as_json: JsonOpt = False) -> None:
    """List the tokens: name, role, when made, last used and revoked (never the secrets).

    Exit status: 0 success, 2 bad usage, 3 unreadable input, 4 component failed, 5 plug-in missing.
    """
    from rich.markup import escape
    from rich.table import Table

    with opened(catalog) as store:
        found = store.tokens()
    if as_json:
        stdout.out(dumps([to_json(t) for t in found]))
        return
    if not found:
        stdout.out("no tokens (haprotect token add NAME --role ROLE makes one)")
        return
    table = Table(title="API tokens", title_justify="left")
    for column in ("name", "role", "created (UTC)", "last used (UTC)", "revoked (UTC)"):
        table.add_column(column)
    for t in found:
        table.add_row(
            escape(t.name), t.role.value, when(t.created_at), when(t.last_used),
            when(t.revoked_at),
        )  # fmt: skip
    stdout.print(table)


@token_app.command("revoke")
@reports_errors
def revoke_command(name: NameArg, catalog: CatalogOpt = None, as_json: JsonOpt = False) -> None:
    """Revoke a token: the API refuses it from now on.

    Exit status: 0 success, 2 bad usage, 3 unreadable input, 4 component failed, 5 plug-in missing.
    """
    with opened(catalog) as store:
        revoked = store.revoke_token(name)
    if as_json:
        stdout.out(dumps(to_json(revoked)))
    else:
        stdout.out(f"token {name}: revoked at {when(revoked.revoked_at)} UTC")
