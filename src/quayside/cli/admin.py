"""``quayside admin|users|groups|grants|tokens ...``: who may use a ``quayside server --auth``, and how much.

These commands talk to the database of this machine's settings (``QUAYSIDE_DB_URL``,
else ``$QUAYSIDE_HOME/quayside.db``) directly, never to a server: whoever can open the
database is its administrator already. That is how the first admin comes to be, since
no account or password exists until one is made here. The audit log names the actor
``local:<OS user>`` (or ``local:<QUAYSIDE_ACTOR>``).

A new token is printed alone on stdout (so ``TOKEN=$(quayside tokens create ci)`` works);
what is said about it goes to stderr. It is shown once: the database keeps only its hash.
"""

from __future__ import annotations

import getpass
import re
import sys
import time
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from quayside.cli.console import err, format_time, out, out_raw, print_json, styled
from quayside.config import load_settings
from quayside.errors import UsageError
from quayside.identity.model import Level, Resource, ResourceKind

if TYPE_CHECKING:
    from quayside.identity.entities import Group, NewToken, TokenInfo
    from quayside.identity.store import IdentityStore

admin_app = typer.Typer(
    help="Set up authentication on this machine's database: the first admin and its token.",
    no_args_is_help=True,
)
users_app = typer.Typer(
    help="Manage users and service accounts (on this machine's database).", no_args_is_help=True
)
groups_app = typer.Typer(help="Manage groups of users (on this machine's database).", no_args_is_help=True)
grants_app = typer.Typer(
    help="Give users and groups read, edit or manage on an experiment or a model.", no_args_is_help=True
)
tokens_app = typer.Typer(
    help="Create, list and revoke API tokens (on this machine's database).", no_args_is_help=True
)

_DURATION = re.compile(r"(\d+)\s*([smhdw])")
_DURATION_UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}

AsJson = Annotated[bool, typer.Option("--json", help="Print JSON, for scripts.")]
PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from stdin (one line) instead of asking.")
]


def _store() -> IdentityStore:
    from quayside.identity.store import IdentityStore

    return IdentityStore.from_settings(load_settings())


def _actor() -> str:
    return f"local:{load_settings().actor or getpass.getuser()}"


def parse_duration_ms(text: str) -> int:
    """``30d``, ``12h``, ``90m``, ``2w`` or ``3600s`` as milliseconds."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None or int(match.group(1)) == 0:
        raise UsageError(
            f"a duration is a positive number and a unit s, m, h, d or w (like 30d), not '{text}'"
        )
    return int(match.group(1)) * _DURATION_UNITS_S[match.group(2)] * 1000


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        password = line.removesuffix("\n").removesuffix("\r")
        if not password:
            raise UsageError("--password-stdin read no password from stdin")
        return password
    first = getpass.getpass("password: ")
    if getpass.getpass("password again: ") != first:
        raise UsageError("the two passwords differ")
    return first


def _print_new_token(new: NewToken) -> None:
    expiry = f", expires {format_time(new.info.expires_at)}" if new.info.expires_at else ", never expires"
    label = f" '{new.info.name}'" if new.info.name else ""
    err.print(f"token {new.info.id}{label} for '{new.info.user}' (prefix {new.info.prefix}{expiry}):")
    out_raw(new.token)
    err.print(styled(("shown once: store it now; only its hash is kept", "yellow")))


def _token_row(token: TokenInfo, now: int) -> dict[str, object]:
    return {
        "id": token.id,
        "user": token.user,
        "name": token.name,
        "prefix": token.prefix,
        "status": token.status(now),
        "created_at": token.created_at,
        "expires_at": token.expires_at,
        "last_used_at": token.last_used_at,
        "revoked_at": token.revoked_at,
    }


# --- quayside admin ---------------------------------------------------------------------------


@admin_app.command("create-user")
def create_user(
    name: Annotated[str, typer.Argument(help="The user's (or service account's) name.")],
    admin: Annotated[
        bool, typer.Option("--admin", help="Make it an admin: every permission on everything.")
    ] = False,
    service: Annotated[
        bool, typer.Option("--service", help="A service account: tokens only, never a password.")
    ] = False,
    password_stdin: PasswordStdin = False,
    no_password: Annotated[
        bool, typer.Option("--no-password", help="Do not ask for a password (the user signs in with tokens).")
    ] = False,
    token_name: Annotated[str, typer.Option("--token-name", help="A label for the token.")] = "",
) -> None:
    """Create a user and print a one-time API token for it; the way to make the first admin.

    A user (not a service account) is asked for a password for the web UI, unless
    --no-password is given or stdin is not a terminal; --password-stdin reads it from stdin.
    """
    if service and password_stdin:
        raise UsageError("a service account has no password; drop --password-stdin")
    password = None
    if not service and not no_password and (password_stdin or sys.stdin.isatty()):
        password = _read_password(password_stdin)
    store = _store()
    user = store.create_user(name, password=password, admin=admin, service=service, actor=_actor())
    role = "admin " if user.is_admin else ""
    kind = "service account" if service else "user"
    err.print(f"created {role}{kind} '{user.name}'" + (" with a password" if user.has_password else ""))
    _print_new_token(store.create_token(user.name, name=token_name, actor=_actor()))


@admin_app.command("auth-log")
def auth_log(
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many entries, newest first.")] = 50,
    as_json: AsJson = False,
) -> None:
    """Show the auth audit log: logins, failed logins, token, user, group and grant changes."""
    events = _store().auth_events(limit)
    if as_json:
        print_json([{**vars(event), "detail": dict(event.detail)} for event in events])
        return
    table = Table("time", "actor", "action", "subject", "detail")
    for event in events:
        detail = ", ".join(f"{key}={value}" for key, value in event.detail.items())
        table.add_row(format_time(event.time), event.actor, event.action, event.subject, detail)
    out.print(table)


# --- quayside users ---------------------------------------------------------------------------


@users_app.command("list")
def list_users(as_json: AsJson = False) -> None:
    """List users and service accounts, with their groups."""
    users = _store().list_users()
    if as_json:
        print_json([{**vars(user), "kind": str(user.kind), "groups": list(user.groups)} for user in users])
        return
    table = Table("name", "kind", "admin", "state", "password", "groups", "created")
    for user in users:
        table.add_row(
            user.name,
            str(user.kind),
            "yes" if user.is_admin else "",
            "disabled" if user.disabled else "enabled",
            "set" if user.has_password else "-",
            ", ".join(user.groups),
            format_time(user.created_at),
        )
    out.print(table)


@users_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="The user's (or service account's) name.")],
    admin: Annotated[bool, typer.Option("--admin", help="Make it an admin.")] = False,
    service: Annotated[bool, typer.Option("--service", help="A service account: tokens only.")] = False,
    password_stdin: PasswordStdin = False,
) -> None:
    """Create a user (no token: use `quayside tokens create`). With --password-stdin, set its password."""
    if service and password_stdin:
        raise UsageError("a service account has no password; drop --password-stdin")
    password = _read_password(True) if password_stdin else None
    user = _store().create_user(name, password=password, admin=admin, service=service, actor=_actor())
    out.print(f"created {'service account' if service else 'user'} '{user.name}'")


@users_app.command("disable")
def disable(name: Annotated[str, typer.Argument(help="The user's name.")]) -> None:
    """Disable a user: its password and tokens stop working at once."""
    user = _store().disable_user(name, actor=_actor())
    out.print(f"disabled '{user.name}'")


@users_app.command("enable")
def enable(name: Annotated[str, typer.Argument(help="The user's name.")]) -> None:
    """Enable a disabled user again (its tokens that are not revoked or expired work again)."""
    user = _store().enable_user(name, actor=_actor())
    out.print(f"enabled '{user.name}'")


@users_app.command("set-password")
def set_password(
    name: Annotated[str, typer.Argument(help="The user's name.")], password_stdin: PasswordStdin = False
) -> None:
    """Set a user's password (asked for twice, or read from stdin with --password-stdin)."""
    user = _store().set_password(name, _read_password(password_stdin), actor=_actor())
    out.print(f"set the password of '{user.name}'")


@users_app.command("set-admin")
def set_admin(
    name: Annotated[str, typer.Argument(help="The user's name.")],
    remove: Annotated[bool, typer.Option("--remove", help="Take admin away instead.")] = False,
) -> None:
    """Make a user an admin (or, with --remove, no longer one; the last admin stays)."""
    user = _store().set_admin(name, not remove, actor=_actor())
    out.print(f"'{user.name}' is {'an admin' if user.is_admin else 'not an admin'}")


# --- quayside groups --------------------------------------------------------------------------


@groups_app.command("list")
def list_groups(as_json: AsJson = False) -> None:
    """List groups and their members."""
    groups = _store().list_groups()
    if as_json:
        print_json([{**vars(group), "members": list(group.members)} for group in groups])
        return
    table = Table("name", "members", "created")
    for group in groups:
        table.add_row(group.name, ", ".join(group.members), format_time(group.created_at))
    out.print(table)


@groups_app.command("create")
def create_group(name: Annotated[str, typer.Argument(help="The group's name.")]) -> None:
    """Create a group."""
    group = _store().create_group(name, actor=_actor())
    out.print(f"created group '{group.name}'")


@groups_app.command("add")
def add_member(
    group: Annotated[str, typer.Argument(help="The group's name.")],
    user: Annotated[str, typer.Argument(help="The user to add.")],
) -> None:
    """Add a user to a group (it gets what the group is granted)."""
    _print_members(_store().add_member(group, user, actor=_actor()))


@groups_app.command("remove")
def remove_member(
    group: Annotated[str, typer.Argument(help="The group's name.")],
    user: Annotated[str, typer.Argument(help="The user to remove.")],
) -> None:
    """Remove a user from a group."""
    _print_members(_store().remove_member(group, user, actor=_actor()))


def _print_members(group: Group) -> None:
    out.print(f"group '{group.name}': {', '.join(group.members) or '(no members)'}")


@groups_app.command("delete")
def delete_group(name: Annotated[str, typer.Argument(help="The group's name.")]) -> None:
    """Delete a group with its grants (its members stay, without the group's permissions)."""
    _store().delete_group(name, actor=_actor())
    out.print(f"deleted group '{name}'")


# --- quayside grants --------------------------------------------------------------------------


def _resource(kind: str, key: str) -> Resource:
    try:
        return Resource(ResourceKind(kind.strip().lower()), key)
    except ValueError:
        raise UsageError(f"a grant is on an 'experiment' or a 'model', not '{kind}'") from None


@grants_app.command("set")
def set_grant(
    principal: Annotated[str, typer.Argument(help="A user's name, or group:NAME.")],
    kind: Annotated[str, typer.Argument(help="experiment or model.", metavar="experiment|model")],
    key: Annotated[str, typer.Argument(help="The experiment's id or the model's name.")],
    level: Annotated[str, typer.Argument(help="read, edit, manage, or none to remove.", metavar="LEVEL")],
) -> None:
    """Give PRINCIPAL LEVEL on one experiment or model, replacing what it held there.

    Example: quayside grants set group:ml-team model iris edit
    """
    resource = _resource(kind, key)
    granted = _store().grant(principal, resource, Level.parse(level), actor=_actor())
    if granted is None:
        out.print(f"{principal} holds no grant on {resource}")
    else:
        out.print(f"{granted.principal} has {granted.level} on {granted.resource}")


@grants_app.command("list")
def list_grants(
    kind: Annotated[
        str | None, typer.Argument(help="experiment or model (all grants when left out).")
    ] = None,
    key: Annotated[str | None, typer.Argument(help="The experiment's id or the model's name.")] = None,
    principal: Annotated[
        str | None, typer.Option("--principal", help="Only this user's or group:NAME's.")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """List grants: all of them, or those on one experiment or model."""
    if kind is not None and key is None:
        raise UsageError("name the resource's key too: quayside grants list KIND KEY")
    resource = _resource(kind, key) if kind is not None and key is not None else None
    grants = _store().list_grants(resource, principal=principal)
    if as_json:
        print_json(
            [
                {
                    "principal": grant.principal,
                    "kind": str(grant.resource.kind),
                    "key": grant.resource.key,
                    "level": str(grant.level),
                    "created_at": grant.created_at,
                }
                for grant in grants
            ]
        )
        return
    table = Table("principal", "kind", "key", "level", "since")
    for grant in grants:
        table.add_row(
            grant.principal,
            str(grant.resource.kind),
            grant.resource.key,
            str(grant.level),
            format_time(grant.created_at),
        )
    out.print(table)


# --- quayside tokens --------------------------------------------------------------------------


@tokens_app.command("create")
def create_token(
    user: Annotated[str, typer.Argument(help="Whose token: a user or service account.")],
    name: Annotated[str, typer.Option("--name", help="A label, to tell tokens apart.")] = "",
    expires_in: Annotated[
        str | None, typer.Option("--expires-in", help="Lifetime, like 30d, 12h or 2w (default: none).")
    ] = None,
) -> None:
    """Create an API token and print it once (alone on stdout)."""
    expires_at = None if expires_in is None else int(time.time() * 1000) + parse_duration_ms(expires_in)
    _print_new_token(_store().create_token(user, name=name, expires_at_ms=expires_at, actor=_actor()))


@tokens_app.command("list")
def list_tokens(
    user: Annotated[str | None, typer.Argument(help="Only this user's tokens.")] = None,
    as_json: AsJson = False,
) -> None:
    """List tokens (never the tokens themselves: their ids, prefixes and times)."""
    tokens = _store().list_tokens(user)
    now = int(time.time() * 1000)
    if as_json:
        print_json([_token_row(token, now) for token in tokens])
        return
    table = Table("id", "user", "name", "prefix", "status", "created", "expires", "last used")
    for token in tokens:
        table.add_row(
            str(token.id),
            token.user,
            token.name,
            token.prefix,
            token.status(now),
            format_time(token.created_at),
            format_time(token.expires_at),
            format_time(token.last_used_at),
        )
    out.print(table)


@tokens_app.command("revoke")
def revoke_token(
    token_id: Annotated[int, typer.Argument(help="The token's id (see `quayside tokens list`).")],
) -> None:
    """Revoke a token: it stops working at once."""
    token = _store().revoke_token(token_id, actor=_actor())
    out.print(f"revoked token {token.id} of '{token.user}' (prefix {token.prefix})")
