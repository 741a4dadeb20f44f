"""``account create|show|update|delete``: the account and its profile, or guest mode."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import click

from phoneagent.cli.context import AgentContext, pass_agent, tell_running_agent
from phoneagent.cli.output import emit, json_option
from phoneagent.cli.privacy import privacy_errors, show_policy_notice
from phoneagent.errors import AgentError
from phoneagent.privacy import (
    AccountDeletion,
    ProfileInput,
    create_account,
    delete_account,
    guest_identity,
    update_account,
)
from phoneagent.privacy.account import profile_input
from phoneagent.privacy.export import rows
from phoneagent.privacy.regions import REGIONS
from phoneagent.services.erasure import send_erasures
from phoneagent.store import Store
from protocol.settings import Sex

_SEXES = [s.name.lower() for s in Sex]
ERASE_WAIT_S = 10.0  # for the cloud's confirmation of an account's erasure
Command = Callable[..., None]


def _profile_options(required: bool) -> Callable[[Command], Command]:
    """The profile fields: required for create, optional (keep the stored value) for update."""
    regions = ", ".join(f"{r.key} ({r.name}, {r.minimum_age}+)" for r in REGIONS.values())
    options = [
        click.option(
            "--region",
            type=click.Choice(sorted(REGIONS)),
            required=required,
            help=f"Home region: {regions}.",
        ),
        click.option(
            "--birth-date",
            type=click.DateTime(["%Y-%m-%d"]),
            required=required,
            help="YYYY-MM-DD; stays on this phone, the watch only gets the age.",
        ),
        click.option(
            "--sex",
            type=click.Choice(_SEXES),
            required=required,
            help="Goes into the watch's user profile (its energy estimates).",
        ),
        click.option("--height", type=int, required=required, help="Centimetres."),
        click.option("--weight", type=float, required=required, help="Kilograms."),
    ]

    def decorate(command: Command) -> Command:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def _profile(
    base: ProfileInput | None,
    region: str | None,
    birth_date: datetime | None,
    sex: str | None,
    height: int | None,
    weight: float | None,
) -> ProfileInput:
    """The options over ``base`` (None only when every option is given)."""
    values: dict[str, Any] = {
        "region": region,
        "birth_date": None if birth_date is None else birth_date.date(),
        "sex": None if sex is None else Sex[sex.upper()],
        "height_cm": height,
        "weight_decikg": None if weight is None else round(weight * 10),
    }
    if base is not None:
        values = {k: getattr(base, k) if v is None else v for k, v in values.items()}
    return ProfileInput(**values)


def _deleted(agent: AgentContext, store: Store, result: AccountDeletion) -> None:
    """Report the deletion, tell a running agent at once (its watches are gone: it must
    stop syncing them before it stores more of them), and send the cloud erase requests
    (PR-RETAIN)."""
    click.echo(f"{result.reason}\nDeleted {result.samples} sample(s) from this phone.")
    click.echo(f"Consents reset; {tell_running_agent(agent)}.")
    for r in result.erase_requests:
        click.echo(f"Cloud erasure requested from {r.endpoint} (request {r.id}).")
    if not result.erase_requests:
        return
    try:
        pending = send_erasures(agent.data_dir, store, ERASE_WAIT_S)
    except AgentError as failure:
        click.echo(f"Warning: {failure}.", err=True)
        return
    click.echo(f"{pending} erase request(s) pending confirmation (see: phoneagent cloud status).")


@click.group("account")
def account_group() -> None:
    """Your account (region, date of birth, sex, height, weight) or guest mode."""


@account_group.command("create")
@_profile_options(required=True)
@pass_agent
def create_command(
    agent: AgentContext,
    region: str,
    birth_date: datetime,
    sex: str,
    height: int,
    weight: float,
) -> None:
    """Create the account; you accept the current privacy policy. No password, no e-mail."""
    with agent.open_store() as store, privacy_errors():
        account = create_account(store, _profile(None, region, birth_date, sex, height, weight))
    click.echo(
        f"Account created (region {account.region}); {tell_running_agent(agent)}. Cloud sync "
        "is off until you run: phoneagent cloud enable"
    )


@account_group.command("show")
@json_option
@pass_agent
def show_command(agent: AgentContext, as_json: bool) -> None:
    """The account, or the guest install id."""
    with agent.open_store() as store:
        guest_identity(store)
        (row,) = rows(store, "account")
        show_policy_notice(store)
    if as_json:
        click.echo(json.dumps(row, indent=2))
    else:
        emit([row], list(row), f"{row['kind']}", False)


@account_group.command("update")
@_profile_options(required=False)
@pass_agent
def update_command(
    agent: AgentContext,
    region: str | None,
    birth_date: datetime | None,
    sex: str | None,
    height: int | None,
    weight: float | None,
) -> None:
    """Correct the profile; a connected watch gets it at once, others on their next sync."""
    with agent.open_store() as store, privacy_errors():
        account = store.ledger.get_account()  # read only: a refusal writes nothing
        if account is None or account.guest:
            raise click.UsageError("There is no account to update (guest mode); create one.")
        base = profile_input(account)
        result = update_account(store, _profile(base, region, birth_date, sex, height, weight))
        if isinstance(result, AccountDeletion):
            _deleted(agent, store, result)
            return
    click.echo(f"Profile corrected; {tell_running_agent(agent)}.")


@account_group.command("delete")
@click.confirmation_option(prompt="Delete the account and every piece of its data?")
@pass_agent
def delete_command(agent: AgentContext) -> None:
    """Delete the account: local data now, cloud copies by erase requests (90-day limit)."""
    with agent.open_store() as store, privacy_errors():
        _deleted(agent, store, delete_account(store))


COMMANDS = (account_group,)
