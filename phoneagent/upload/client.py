"""aiomqtt's client, made to fail a publish that the broker refused.

aiomqtt's ``publish`` returns on any PUBACK. An MQTT 5 broker refuses a QoS 1 publish
(ACL, quota, bad topic) with a PUBACK whose reason code is >= 0x80, having dropped the
message: taken as success, that would move the upload position past samples nobody holds.
Here the reason code of each message id is kept from paho's callback and checked when the
publish returns. aiomqtt exposes no public hook for this (its paho client is the private
``_client``), so it relies on aiomqtt internals: the paho client in ``_client``, whose
``publish`` aiomqtt's ``publish`` calls, and aiomqtt's ``_on_publish`` callback (and, for
``publish_acked``'s writes, below, ``_on_socket_register_write`` and ``_disconnected``,
with paho's rule that it asks for a writer once until it no longer wants one). pyproject
pins aiomqtt and paho-mqtt to exactly the versions this was tested on (2.5.1 and 2.2.0);
``tests/unit/test_mqtt_internals.py`` fails when those internals or the pin change, and
``tests/system/test_upload.py`` catches a refusal end to end with a real broker.

``subscribe`` checks the SUBACK in the same spirit: a subscription the broker refused
(ACL, a leader election on a clustered broker) raises ``SubscribeRefusedError`` instead
of leaving the caller waiting for messages that will never come.

``publish_acked`` is the uploader's way to publish: paho's ``publish`` and a future per
message that the PUBACK completes. aiomqtt's ``publish`` makes a coroutine (a task, when
a window is sent at once), an ``asyncio.Event`` and two scans of every pending message
id per message; that was a third of the publishing CPU (benchmarks/RESULTS.md).

A lone message (one, while no other ``publish_acked`` message awaits its PUBACK: a live
agent's second) is written to the socket before ``publish_acked`` returns, where paho's
writer would write it a loop turn later: aiomqtt asks the loop for that writer from any
thread (a wake-up of the loop through its self-pipe, a writer added and removed, a loop
turn before the send), which made a live publish and its PUBACK cost 130 us of CPU
instead of 105. Several messages, or PUBACKs still on their way (a bulk upload), go
through aiomqtt's writer as before, after the loop has read what arrived: written in the
call, bench_upload lost 3-5%. So do a message when a writer is already waiting (the
socket did not take an earlier one whole) and one paho holds past its in-flight limit.
aiomqtt's writer is private to it (``_on_socket_register_write``): it stays paho's
callback for everything but a lone message (the CONNECT from aiomqtt's thread, what the
socket did not take at once). An exception from the write in the call is handed to
aiomqtt's private ``_disconnected``, and what is left still gets a writer, as with
aiomqtt's own; a broken connection reaches ``_disconnected`` through paho's
``on_disconnect``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from contextvars import ContextVar
from typing import Any

import aiomqtt
from aiomqtt.types import PayloadType, SubscribeTopic
from paho.mqtt.client import Client as PahoClient
from paho.mqtt.client import MQTTMessageInfo
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

# The message ids paho assigned inside the current ``publish`` call (one task's context).
_assigned: ContextVar[list[int] | None] = ContextVar("assigned_mids", default=None)


class MqttRefusedError(aiomqtt.MqttError):
    """The broker answered with a failure code: its configuration (ACL, quota) or its own
    trouble (a clustered broker electing a leader); retried, and reported as a refusal."""


class PublishRefusedError(MqttRefusedError):
    """The broker acknowledged a publish with a failure reason code and dropped it."""

    def __init__(self, topic: str, reason: ReasonCode) -> None:
        code = int(reason.value)
        super().__init__(f"the broker refused a publish to {topic}: {reason} (0x{code:02X})")
        self.topic = topic
        self.reason = reason


class SubscribeRefusedError(MqttRefusedError):
    """The broker answered a subscription with a failure code: nothing will be delivered."""

    def __init__(self, topic: str, code: int, reason: str) -> None:
        super().__init__(f"the broker refused a subscription to {topic}: {reason} (0x{code:02X})")
        self.topic = topic
        self.code = code


class CheckedClient(aiomqtt.Client):
    """An ``aiomqtt.Client`` whose ``publish`` and ``subscribe`` raise on a refusal."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._refused: dict[int, ReasonCode] = {}
        # ``publish_acked``'s messages awaiting their PUBACK: message id -> (topic, future).
        self._acks: dict[int, tuple[str, asyncio.Future[None]]] = {}
        # While ``publish_acked`` publishes a lone message: its thread, and the socket of
        # paho's request for a writer from that thread, held for the write in the call.
        self._holding: int | None = None
        self._held_socket: Any = None
        self._client.on_socket_register_write = self._register_write
        paho_publish = self._paho_publish = self._client.publish

        def publish(*args: Any, **kwargs: Any) -> MQTTMessageInfo:
            info = paho_publish(*args, **kwargs)
            self._refused.pop(info.mid, None)  # message ids are recycled
            assigned = _assigned.get()
            if assigned is not None:
                assigned.append(info.mid)
            return info

        self._client.publish = publish  # type: ignore[method-assign]

    def _on_publish(
        self,
        client: PahoClient,
        userdata: Any,
        mid: int,
        reason_code: ReasonCode,
        properties: Properties,
    ) -> None:
        waiting = self._acks.pop(mid, None)
        if waiting is not None:
            topic, ack = waiting
            if not ack.done():  # a cancelled one missed its deadline
                if reason_code.is_failure:
                    ack.set_exception(PublishRefusedError(topic, reason_code))
                else:
                    ack.set_result(None)
            return
        if reason_code.is_failure:
            self._refused[mid] = reason_code
        super()._on_publish(client, userdata, mid, reason_code, properties)

    def _register_write(self, client: PahoClient, userdata: Any, sock: Any) -> None:
        """paho has a packet to send. For ``publish_acked``'s lone message, on its thread,
        the request is held for the write in the call; otherwise aiomqtt's writer."""
        if self._holding == threading.get_ident():
            self._held_socket = sock
        else:
            super()._on_socket_register_write(client, userdata, sock)

    def _write_held(self, sock: Any) -> None:
        """Write what ``publish_acked`` queued (paho asked for a writer on ``sock``), as
        aiomqtt's writer would have a loop turn later; what the socket does not take at
        once goes through aiomqtt's writer. paho counts that writer as asked for already
        (it asked ``_register_write``), so it does not ask again."""
        client = self._client
        written = MQTTErrorCode.MQTT_ERR_SUCCESS
        try:
            written = client.loop_write()
        except Exception as error:  # as aiomqtt's writer does with one, which stays asked for
            if not self._disconnected.done():
                self._disconnected.set_exception(error)
        # A lost connection (paho closed the socket, told on_disconnect) asks for nothing.
        if written == MQTTErrorCode.MQTT_ERR_SUCCESS and client.socket() and client.want_write():
            super()._on_socket_register_write(client, client.user_data_get(), sock)

    def publish_acked(self, topic: str, payloads: Sequence[bytes]) -> list[asyncio.Future[None]]:
        """Send each payload with QoS 1 (a lone message written to the socket before this
        returns, see the module docstring); each future is done when the broker
        acknowledged its message, with ``PublishRefusedError`` when the broker refused it,
        with ``MqttCodeError`` when paho could not take it. Cancel them to stop waiting (a
        deadline)."""
        loop = asyncio.get_running_loop()
        acks: list[asyncio.Future[None]] = []
        if len(payloads) == 1 and not self._acks:  # a lone message (the module docstring)
            self._holding = threading.get_ident()
        try:
            for payload in payloads:
                ack: asyncio.Future[None] = loop.create_future()
                info = self._paho_publish(topic, payload, 1)
                if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    ack.set_exception(aiomqtt.MqttCodeError(info.rc, "Could not publish message"))
                else:
                    self._refused.pop(info.mid, None)  # message ids are recycled
                    self._acks[info.mid] = (topic, ack)
                acks.append(ack)
        finally:
            self._holding = None
            # None: nothing asked, or a writer was already waiting (it sends the message).
            sock, self._held_socket = self._held_socket, None
            if sock is not None:
                self._write_held(sock)
        return acks

    async def publish(
        self,
        /,
        topic: str,
        payload: PayloadType = None,
        qos: int = 0,
        retain: bool = False,
        properties: Properties | None = None,
        *args: Any,
        timeout: float | None = None,  # noqa: ASYNC109 (aiomqtt's signature)
        **kwargs: Any,
    ) -> None:
        assigned: list[int] = []
        token = _assigned.set(assigned)
        try:
            await super().publish(
                topic, payload, qos, retain, properties, *args, timeout=timeout, **kwargs
            )
        finally:
            _assigned.reset(token)
        for mid in assigned:
            if (reason := self._refused.pop(mid, None)) is not None:
                raise PublishRefusedError(topic, reason)

    async def subscribe(
        self,
        /,
        topic: SubscribeTopic,
        qos: int = 0,
        options: SubscribeOptions | None = None,
        properties: Properties | None = None,
        *args: Any,
        timeout: float | None = None,  # noqa: ASYNC109 (aiomqtt's signature)
        **kwargs: Any,
    ) -> tuple[int, ...] | list[ReasonCode]:
        granted = await super().subscribe(
            topic, qos, options, properties, *args, timeout=timeout, **kwargs
        )
        for code in granted:  # MQTT 3.1.1: 0x80; MQTT 5: any reason code >= 0x80
            value = int(code.value) if isinstance(code, ReasonCode) else int(code)
            if value >= 0x80:
                reason = str(code) if isinstance(code, ReasonCode) else "Failure"
                raise SubscribeRefusedError(str(topic), value, reason)
        return granted
