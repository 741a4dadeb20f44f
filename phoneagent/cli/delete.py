"""``delete``: data of a device, a metric or a time range, or everything (PR-DELETE)."""

from __future__ import annotations

import click

from phoneagent.cli.context import AgentContext, pass_agent, sentence, tell_running_agent
from phoneagent.cli.params import ADDRESS, measurement_window
from phoneagent.cli.privacy import privacy_errors
from phoneagent.privacy import delete_data
from protocol.address import Address
from protocol.metrics import Metric


@click.command("delete")
@click.option(
    "--device",
    type=ADDRESS,
    help="This watch (address): alone, the device with all its data and bond; with other "
    "filters, only its matching samples.",
)
@click.option("--metric", type=click.Choice([m.key for m in Metric]), help="Only this metric.")
@measurement_window
@click.option("--all", "everything", is_flag=True, help="Every device's data (account stays).")
@click.confirmation_option(prompt="Delete this data from the phone (and the cloud)?")
@pass_agent
def delete_command(
    agent: AgentContext,
    device: Address | None,
    metric: str | None,
    since: int | None,
    until: int | None,
    everything: bool,
) -> None:
    """Delete data here at once; when cloud sync was ever on, request erasure in the cloud."""
    filters = (device, metric, since, until)
    if everything == any(f is not None for f in filters):
        raise click.UsageError("Give --all, or at least one of --device/--metric/--since/--until.")
    with agent.open_store() as store, privacy_errors():
        result = delete_data(
            store,
            device=device,
            metric=None if metric is None else Metric[metric.upper()],
            since=since,
            until=until,
        )
    click.echo(f"Deleted {result.samples} sample(s) and {result.devices} device(s).")
    if result.devices:  # a running agent stops syncing them (it would store more of them)
        news = tell_running_agent(
            agent, done="the running agent stopped syncing them", not_running=""
        )
        if news:
            click.echo(sentence(news))
    for r in result.erase_requests:
        click.echo(f"Cloud erasure requested from {r.endpoint}, due by the 90-day limit.")


COMMANDS = (delete_command,)
