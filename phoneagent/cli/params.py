"""Option and argument types shared by the commands: values checked by click, so that a
bad one is a usage error (exit 2) naming the parameter, before any file is touched."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

import click

from protocol.address import Address, AddressError


class AddressParam(click.ParamType[Address]):
    """A watch's Bluetooth address (``protocol.address.Address``)."""

    name = "address"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> Address:
        try:
            return Address(str(value))
        except AddressError as error:
            self.fail(str(error), param, ctx)


ADDRESS = AddressParam()


class MomentParam(click.ParamType[int]):
    """A point in time as Unix seconds: ISO 8601 (naive means UTC) or Unix seconds."""

    name = "time"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> int:
        if isinstance(value, int):
            return value
        text = str(value).strip()
        if text.isdigit():
            return int(text)
        try:
            moment = datetime.fromisoformat(text)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return int(moment.timestamp())
        except (ValueError, OverflowError, OSError):
            self.fail(
                f"{text!r} is neither ISO 8601 (2026-06-01T12:00) nor Unix seconds", param, ctx
            )


MOMENT = MomentParam()


_Command = TypeVar("_Command", bound=Callable[..., object])


def measurement_window(command: _Command) -> _Command:
    """``--since``/``--until`` by measurement time, as ``data``, ``report`` and ``delete``
    select samples: the same words and types everywhere."""
    since = click.option(
        "--since",
        type=MOMENT,
        help="From this measurement time, by the watch's clock (ISO 8601, naive = UTC, or "
        "Unix seconds).",
    )
    until = click.option("--until", type=MOMENT, help="Before this measurement time.")
    return since(until(command))
