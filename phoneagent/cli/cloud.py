"""``cloud enable|disable|clear|status`` and the reference ``cloud-receiver``.

``cloud-receiver`` only parses its options here: the receiver is the back end's side
(``cloudreceiver``), imported when the command runs, never by the agent.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import click

from phoneagent.cli.context import AgentContext, CliError, pass_agent, tell_running_agent
from phoneagent.cli.output import emit, json_option
from phoneagent.errors import EXIT_USAGE
from phoneagent.privacy.consent import CLOUD_SYNC, set_consent
from phoneagent.privacy.erase import request_cloud_erasure
from phoneagent.services.erasure import send_erasures
from phoneagent.upload.endpoints import Endpoint, EndpointError, MqttVersion


def _iso(moment: int | None) -> str | None:
    return None if moment is None else datetime.fromtimestamp(moment, UTC).isoformat()


@click.group("cloud")
def cloud() -> None:
    """Cloud sync (MQTT upload to the account's home region): off until enabled."""


@cloud.command("enable")
@pass_agent
def enable(agent: AgentContext) -> None:
    """Turn cloud sync on (recorded in the consent ledger)."""
    with agent.open_store() as store:
        set_consent(store, CLOUD_SYNC, True)
    click.echo(f"Cloud sync is on; {tell_running_agent(agent)}.")


@cloud.command("disable")
@pass_agent
def disable(agent: AgentContext) -> None:
    """Turn cloud sync off; the uploader stops before its next batch."""
    with agent.open_store() as store:
        set_consent(store, CLOUD_SYNC, False)
    click.echo("Cloud sync is off.")


@cloud.command("clear")
@click.option("--wait", type=float, default=10.0, show_default=True, help="Seconds to await.")
@pass_agent
def clear(agent: AgentContext, wait: float) -> None:
    """Ask the cloud to erase all uploaded data; tracked until it confirms.

    Also sends every erase request still pending (after an account deletion, say).
    """
    with agent.open_store() as store:
        requested = request_cloud_erasure(store, "data")
        if not requested and not store.ledger.erase_requests(pending_only=True):
            click.echo("Nothing was ever uploaded; there is nothing to erase.")
            return
        pending = send_erasures(agent.data_dir, store, wait)
    click.echo(f"{pending} erase request(s) pending confirmation (see: phoneagent cloud status).")


@cloud.command("status")
@json_option
@pass_agent
def status(agent: AgentContext, as_json: bool) -> None:
    """Cloud erasures still awaiting confirmation, with their 90-day deadline."""
    with agent.open_store() as store:
        rows = [
            {
                "id": r.id,
                "scope": r.scope,
                "endpoint": r.endpoint,
                "requested": _iso(r.requested_at),
                "sent": _iso(r.sent_at),
                "deadline": _iso(r.deadline_at),
            }
            for r in store.ledger.erase_requests(pending_only=True)
        ]
    emit(
        rows,
        ("id", "scope", "endpoint", "requested", "sent", "deadline"),
        f"{len(rows)} pending erasure(s)",
        as_json,
    )


@click.command("cloud-receiver")
@click.option("--broker", "host", required=True, help="Broker host.")
@click.option(
    "--port", type=click.IntRange(1, 65535), default=1883, show_default=True, help="Broker port."
)
@click.option(
    "--database",
    "--db",
    "database",
    required=True,
    envvar="PHONEAGENT_RECEIVER_DATABASE",
    help="Where the receiver keeps what it received: a SQLite file (created if missing) or "
    "a postgresql:// URL (several receivers share it; docs/upload.md) "
    "[env: PHONEAGENT_RECEIVER_DATABASE].",
)
@click.option("--region", default="eu", show_default=True, help="Region this receiver serves.")
@click.option(
    "--prefix", default="watchsync", show_default=True, help="First topic level (cloud.toml's)."
)
@click.option("--group", default="receivers", show_default=True, help="Shared subscription group.")
@click.option(
    "--no-share",
    is_flag=True,
    help="Subscribe without a shared group (one receiver; its queue then survives a "
    "Mosquitto restart, which shared subscriptions do not; a crash only if the broker "
    "saves on every change, see docs/upload.md).",
)
@click.option(
    "--id",
    "identifier",
    default="receiver-1",
    show_default=True,
    help="MQTT client id; its persistent session keeps the queue across restarts.",
)
@click.option(
    "--tls/--no-tls", default=False, show_default=True, help="TLS to the broker (verified)."
)
@click.option(
    "--ca-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="CA certificate for TLS [default: the system trust store].",
)
@click.option("--username", help="Broker user name.")
@click.option(
    "--password",
    envvar="PHONEAGENT_RECEIVER_PASSWORD",
    help="Broker password [env: PHONEAGENT_RECEIVER_PASSWORD].",
)
@click.option(
    "--allow-plaintext",
    is_flag=True,
    help="Allow --no-tls to a broker outside loopback (PR-TLS refuses it otherwise).",
)
@click.option(
    "--mqtt",
    type=click.Choice(["5", "3.1.1"]),
    default="5",
    show_default=True,
    help="MQTT version the broker speaks.",
)
@click.option(
    "--jetstream",
    multiple=True,
    metavar="URL",
    help="A NATS server of a JetStream cluster (repeat per node): receive from the durable "
    "consumer --group names, which every receiver of the group shares (docs/scaling.md); "
    "MQTT only carries erasure confirmations then.",
)
def cloud_receiver(
    host: str,
    port: int,
    database: str,
    region: str,
    prefix: str,
    group: str,
    no_share: bool,
    identifier: str,
    tls: bool,
    ca_file: Path | None,
    username: str | None,
    password: str | None,
    allow_plaintext: bool,
    mqtt: MqttVersion,
    jetstream: tuple[str, ...],
) -> None:
    """Reference receiver: store uploads de-duplicated, honour and confirm erasures."""
    from cloudreceiver.errors import ReceiverError
    from cloudreceiver.service import run_receiver

    if jetstream and no_share:
        raise CliError("--no-share is for an MQTT subscription, not --jetstream", EXIT_USAGE)
    endpoint = Endpoint(
        region, host, port, tls, ca_file, username, password, allow_plaintext, prefix, mqtt
    )
    try:
        asyncio.run(
            run_receiver(
                endpoint,
                database,
                group=None if no_share else group,
                identifier=identifier,
                say=lambda line: click.echo(line, err=True),
                jetstream=jetstream,
            )
        )
    except EndpointError as error:
        raise CliError(str(error), EXIT_USAGE) from error
    except ReceiverError as error:
        raise CliError(str(error), error.exit_code) from error


COMMANDS = (cloud, cloud_receiver)
