"""Bumble's GATT server (0.0.236) made to answer every request a hostile central can send.

Bumble's server leaves these to the application: Read Multiple (Variable) and Find By
Type Value raise out of their task when an attribute refuses a read (the client gets no
response and its bearer is dead), writes reach attributes that are not writable (a
declaration or the device name would be overwritten), Prepare Write queues a value
without asking whether the write is allowed, a refused Write Command logs a traceback, a
CCCD write of the wrong length is accepted and ignored, a Write Command reaches a
characteristic whose properties do not offer Write Without Response, and a PDU it cannot parse (an
unknown opcode, a truncated request) raises in the L2CAP handler instead of an Error
Response. ``GattServer`` and ``guard_att`` close those, for every attribute alike; the
application keeps deciding who may read or write what (``permit_write``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import struct
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from bumble import att
from bumble.device import Connection, Device
from bumble.gatt import GATT_MAX_ATTRIBUTE_VALUE_SIZE, Characteristic
from bumble.gatt_server import Server

logger = logging.getLogger(__name__)

# Core Vol 3 Part F 3.3.1: bit 6 of an opcode marks a command, which is never answered.
ATT_COMMAND_FLAG = 0x40
# Core Vol 3 Part G 3.3.3.3: bit 0 notifications, bit 1 indications, the rest reserved.
CCCD_NOTIFY, CCCD_INDICATE = 0x0001, 0x0002

KNOWN_OPCODES = frozenset(int(opcode) for opcode in att.Opcode)

PermitWrite = Callable[[att.Bearer, att.Attribute[bytes]], None]


def error_response(opcode: int, handle: int, code: int) -> att.ATT_Error_Response:
    return att.ATT_Error_Response(
        request_opcode_in_error=opcode, attribute_handle_in_error=handle, error_code=code
    )


Request = TypeVar("Request", bound=att.ATT_PDU)
Handler = Callable[["GattServer", att.Bearer, Request], Coroutine[Any, Any, None]]


def _in_task(handler: Handler[Request]) -> Callable[[GattServer, att.Bearer, Request], None]:
    """Bumble calls a PDU's handler synchronously: one that awaits a read runs as a task
    of its own (kept until done), as Bumble's own handlers do."""

    @functools.wraps(handler)
    def spawn(server: GattServer, bearer: att.Bearer, request: Request) -> None:
        server.spawn(handler(server, bearer, request))

    return spawn


class GattServer(Server):
    """Bumble's server, answering refusals with Error Responses (see the module doc).

    ``permit_write(bearer, attribute)`` raises ``att.ATT_Error`` when the application
    refuses a write; it runs before any value is queued or written.
    """

    def __init__(self, device: Device, permit_write: PermitWrite) -> None:
        super().__init__(device)
        self._permit_write = permit_write
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """Runs a handler as a task, referenced until done (asyncio keeps only weak ones)."""
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _write_refused(self, bearer: att.Bearer, handle: int) -> int | None:
        """The ATT error a write to ``handle`` gets before its value is looked at."""
        attribute = self.get_attribute(handle)
        if attribute is None:
            return att.ErrorCode.INVALID_HANDLE
        if not attribute.permissions & att.Attribute.WRITEABLE:
            return att.ErrorCode.WRITE_NOT_PERMITTED
        try:
            self._permit_write(bearer, attribute)
        except att.ATT_Error as error:
            return error.error_code
        return None

    def _refuse_write(self, bearer: att.Bearer, request: att.ATT_PDU, handle: int) -> bool:
        code = self._write_refused(bearer, handle)
        if code is not None:
            self.send_response(bearer, error_response(request.op_code, handle, code))
        return code is not None

    def on_att_write_request(self, bearer: att.Bearer, request: att.ATT_Write_Request) -> None:
        if not self._refuse_write(bearer, request, request.attribute_handle):
            super().on_att_write_request(bearer, request)

    def on_att_prepare_write_request(
        self, bearer: att.Bearer, request: att.ATT_Prepare_Write_Request
    ) -> None:
        # Core Vol 3 Part F 3.4.6.1: permissions are checked when the value is queued.
        if not self._refuse_write(bearer, request, request.attribute_handle):
            super().on_att_prepare_write_request(bearer, request)

    @_in_task
    async def on_att_write_command(
        self, bearer: att.Bearer, request: att.ATT_Write_Command
    ) -> None:
        """A command has no response: a refused one is dropped with a debug line."""
        handle = request.attribute_handle
        code = self._write_refused(bearer, handle)
        attribute = self.get_attribute(handle)
        if isinstance(attribute, Characteristic) and not (
            attribute.properties & Characteristic.Properties.WRITE_WITHOUT_RESPONSE
        ):
            code = att.ErrorCode.WRITE_NOT_PERMITTED  # its properties say: requests only
        if len(request.attribute_value) > GATT_MAX_ATTRIBUTE_VALUE_SIZE:
            code = att.ErrorCode.INVALID_ATTRIBUTE_LENGTH
        if code is None and attribute is not None:
            try:
                await attribute.write_value(bearer, request.attribute_value)
                return
            except att.ATT_Error as error:
                code = error.error_code
        logger.debug("write command to 0x%04X refused (0x%02X)", handle, code)

    def write_cccd(
        self, bearer: att.Bearer, characteristic: Characteristic[bytes], value: bytes
    ) -> None:
        if len(value) != 2:
            raise att.ATT_Error(att.ErrorCode.INVALID_ATTRIBUTE_LENGTH)
        allowed = 0
        if characteristic.properties & Characteristic.Properties.NOTIFY:
            allowed |= CCCD_NOTIFY
        if characteristic.properties & Characteristic.Properties.INDICATE:
            allowed |= CCCD_INDICATE
        if int.from_bytes(value, "little") & ~allowed:
            raise att.ATT_Error(att.ErrorCode.VALUE_NOT_ALLOWED)
        super().write_cccd(bearer, characteristic, value)

    async def _read_each(
        self, bearer: att.Bearer, request: att.ATT_PDU, handles: list[int]
    ) -> list[bytes] | None:
        """Every value, or None once an Error Response for the first refusal is sent."""
        values = []
        for handle in handles:
            attribute = self.get_attribute(handle)
            try:
                if attribute is None:
                    raise att.ATT_Error(att.ErrorCode.INVALID_HANDLE)
                values.append(await attribute.read_value(bearer))
            except att.ATT_Error as error:
                refusal = error_response(request.op_code, handle, error.error_code)
                self.send_response(bearer, refusal)
                return None
        return values

    @_in_task
    async def on_att_read_multiple_request(
        self, bearer: att.Bearer, request: att.ATT_Read_Multiple_Request
    ) -> None:
        values = await self._read_each(bearer, request, list(request.set_of_handles))
        if values is not None:
            joined = b"".join(values)[: bearer.att_mtu - 1]
            self.send_response(bearer, att.ATT_Read_Multiple_Response(set_of_values=joined))

    @_in_task
    async def on_att_read_multiple_variable_request(
        self, bearer: att.Bearer, request: att.ATT_Read_Multiple_Variable_Request
    ) -> None:
        values = await self._read_each(bearer, request, list(request.set_of_handles))
        if values is None:
            return
        room = bearer.att_mtu - 1
        pairs: list[tuple[int, bytes]] = []
        for value in values:
            if room <= 2:
                break
            pairs.append((len(value), value[: room - 2]))
            room -= 2 + len(pairs[-1][1])
        self.send_response(
            bearer, att.ATT_Read_Multiple_Variable_Response(length_value_tuple_list=pairs)
        )

    @_in_task
    async def on_att_find_by_type_value_request(
        self, bearer: att.Bearer, request: att.ATT_Find_By_Type_Value_Request
    ) -> None:
        """Only values the client may read are compared: a refused read is no match, so
        the request cannot probe protected values."""
        found: list[bytes] = []
        room = bearer.att_mtu - 1
        for attribute in self.attributes:
            if len(found) * 4 + 4 > room:
                break
            if not (
                request.starting_handle <= attribute.handle <= request.ending_handle
                and attribute.type == request.attribute_type
            ):
                continue
            try:
                value = await attribute.read_value(bearer)
            except att.ATT_Error:
                continue
            if value == request.attribute_value:
                end = getattr(attribute, "end_group_handle", attribute.handle)
                found.append(struct.pack("<HH", attribute.handle, end))
        response: att.ATT_PDU = (
            att.ATT_Find_By_Type_Value_Response(handles_information_list=b"".join(found))
            if found
            else error_response(
                request.op_code, request.starting_handle, att.ErrorCode.ATTRIBUTE_NOT_FOUND
            )
        )
        self.send_response(bearer, response)


def guard_channel(
    device: Device,
    cid: int,
    parse: Callable[[bytes], object],
    refuse: Callable[[Connection, bytes], None],
) -> None:
    """Puts a parser in front of Bumble's handler of fixed channel ``cid``: a PDU that
    does not parse is ``refuse``d instead of raising inside the host."""
    handler = device.l2cap_channel_manager.fixed_channels[cid]
    assert handler is not None

    def on_pdu(handle: int, pdu: bytes) -> None:
        try:
            parse(pdu)
        except Exception as error:  # whatever the parser raises, the bytes were the peer's
            logger.debug("unparsable PDU %s on CID 0x%04X: %r", pdu.hex(), cid, error)
            connection = device.lookup_connection(handle)
            if connection is not None:
                refuse(connection, pdu)
            return
        handler(handle, pdu)

    device.l2cap_channel_manager.register_fixed_channel(cid, on_pdu)


def guard_att(device: Device) -> None:
    """A request with an unknown opcode gets Request Not Supported, a malformed known
    request Invalid PDU; a command, response or confirmation (never answered) is dropped."""

    def refuse(connection: Connection, pdu: bytes) -> None:
        opcode = pdu[0] if pdu else None
        if opcode in att.ATT_REQUESTS:
            code = att.ErrorCode.INVALID_PDU
        elif opcode is None or opcode & ATT_COMMAND_FLAG or opcode in KNOWN_OPCODES:
            return
        else:
            code = att.ErrorCode.REQUEST_NOT_SUPPORTED
        device.gatt_server.send_response(connection, error_response(opcode, 0, code))

    guard_channel(device, att.ATT_CID, _parse_att, refuse)


def _parse_att(pdu: bytes) -> att.ATT_PDU:
    """Bumble's parser, which also turns an opcode it does not know into a bare PDU
    that its server then ignores (no answer): here that opcode is an error too."""
    if pdu and pdu[0] not in KNOWN_OPCODES:
        raise ValueError(f"unknown ATT opcode 0x{pdu[0]:02X}")
    return att.ATT_PDU.from_bytes(pdu)
