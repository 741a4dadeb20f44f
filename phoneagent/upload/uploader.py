"""The MQTT uploader: store -> broker of the account's home region, at least once.

Per device it reads batches past the upload position (the last seq the endpoint
acknowledged, durable in the store), publishes them with QoS 1 (``aiomqtt`` returns from
``publish`` on PUBACK) and moves the upload position only past batches the broker
acknowledged. A broken connection loses nothing: the next session starts again from the
upload position and the receiver de-duplicates by (device pseudonym, seq).
Policy (guest, cloud sync consent, home region) is decided before every batch, on the state
read with the batch's chunk of samples (one statement, one snapshot).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import ParamSpec, Protocol, TypeVar

import aiomqtt

from phoneagent.backoff import Backoff
from phoneagent.privacy.gate import (
    CLOUD_CATEGORIES,
    CLOUD_UPLOAD_PURPOSE,
    cloud_recipient,
    decide_upload,
    upload_subjects,
)
from phoneagent.store import DeviceRecord, Store, StoreFullError, ledger
from phoneagent.store.ledger import UploadConsents
from phoneagent.upload.client import CheckedClient, MqttRefusedError
from phoneagent.upload.endpoints import Endpoint
from phoneagent.upload.outbox import Chunk, erase_message, read_chunk
from phoneagent.upload.payload import PayloadError, Topics, decode_json, encode_json, parse_topic

log = logging.getLogger(__name__)

ERASE_RESEND_AFTER_S = 6 * 3600
# Reconnecting to the broker: the first wait, and the longest (``Backoff``).
RECONNECT_INITIAL_S = 0.5
RECONNECT_MAX_S = 30.0
# Reading ahead of the publisher (``_Session._produce``): chunks read per trip to a worker
# thread, and chunks left waiting before the next trip starts.
READ_AHEAD = 4
WAITING_CHUNKS = 1
P = ParamSpec("P")
T = TypeVar("T")


class Blocking(Protocol):
    """``asyncio.to_thread``'s signature: a blocking call, awaited (on a thread, or on the
    loop itself in an agent fleet: ``phoneagent.store.OnLoop``)."""

    def __call__(
        self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> Awaitable[T]: ...


class UploadRefusedError(Exception):
    """The privacy policy forbids uploading now; the message names the rule."""


@dataclass
class UploadStats:
    batches: int = 0
    samples: int = 0
    erase_sent: int = 0
    erase_confirmed: int = 0


def policy_refusal(consents: UploadConsents | None, endpoint: Endpoint) -> str | None:
    """None when the account may upload to ``endpoint``, else the reason (PR-GUEST,
    PR-CLOUD, PR-REGION: the privacy gate decides on ``consents``, the state read for
    ``endpoint.region`` with the chunk's samples or, before connecting, on its own)."""
    decision = decide_upload(consents, endpoint.region)
    return None if decision.allowed else decision.reason


class Uploader:
    """One endpoint's uploader: ``run`` in the daemon, ``drain`` for a one-shot upload."""

    def __init__(
        self,
        store: Store,
        endpoint: Endpoint,
        *,
        batch_size: int = 100,
        window: int = 32,
        record_every_chunks: int = 8,
        record_every: float = 10.0,
        backoff: Backoff | None = None,
        refusal: Callable[[UploadConsents | None, Endpoint], str | None] = policy_refusal,
        on_acked: Callable[[str, int], None] | None = None,
        blocking: Blocking = asyncio.to_thread,
    ) -> None:
        self.store = store
        self.endpoint = endpoint
        self.batch_size = batch_size
        self.window = window
        # A long upload is recorded every this many acknowledged chunks, behind the publishing.
        self.record_every_chunks = record_every_chunks
        # Running, a connection's upload positions and disclosure row are committed at most
        # this often (and at its end): live that is one commit per ten uploads, not one each.
        self.record_every = record_every
        self.backoff = backoff or Backoff(RECONNECT_INITIAL_S, RECONNECT_MAX_S)
        self._refusal = refusal
        # Told (device address, last seq) as soon as the broker acknowledged a batch.
        self.on_acked = on_acked
        # Runs the store calls: on a thread (an agent fleet: on its loop, ``OnLoop.run``).
        self.blocking = blocking
        self._wake = asyncio.Event()
        self.stats = UploadStats()

    def wake(self) -> None:
        """New samples were stored, or a consent or erase request changed: look again."""
        self._wake.set()

    def refusal(self) -> str | None:
        """Why the policy forbids uploading to this endpoint now; None when it allows it."""
        return self.decide(self.consents())

    def consents(self) -> UploadConsents | None:
        """The state the policy decides on for this endpoint, as the store holds it now."""
        return self.store.ledger.upload_consents(*upload_subjects(self.endpoint.region))

    def decide(self, consents: UploadConsents | None) -> str | None:
        """``refusal`` on a state already read (each batch: the one read with its chunk)."""
        return self._refusal(consents, self.endpoint)

    async def run(self, stop: asyncio.Event) -> None:
        """Upload whenever woken until ``stop``; reconnect with jittered exponential back-off."""
        # ``stop`` wakes it too, so each wait is on one event: no tasks made per wake-up.
        relay = asyncio.ensure_future(_set_when(stop, self._wake))
        try:
            async for attempt in self.backoff.retrying(_connection_failed, _retrying, stop):
                with attempt:
                    await self._serve(stop)
        finally:
            relay.cancel()

    async def _serve(self, stop: asyncio.Event) -> None:
        """Connect whenever there is something to send, until ``stop``."""
        while not stop.is_set():
            self._wake.clear()
            if await self.blocking(self._worth_connecting):
                await self._connection(stop, confirm_timeout=None)
            else:
                await self._wake.wait()

    async def drain(self, confirm_timeout: float = 0.0) -> UploadStats:
        """Connect once: send owed erase requests and every sample past the upload positions.

        With ``confirm_timeout`` it then waits that long for the erase requests sent to
        be confirmed. Raises ``aiomqtt.MqttError`` when the broker cannot be reached.
        """
        await self._connection(None, confirm_timeout=confirm_timeout)
        return self.stats

    def _worth_connecting(self) -> bool:
        """Uploading is allowed, or an erasure is owed to this endpoint: to send, or sent
        and to be confirmed over a connection (the receiver keeps the confirmation)."""
        return bool(self.erasures_pending()) or self.refusal() is None

    def erasures_pending(self) -> list[ledger.EraseRequest]:
        """Erase requests for this endpoint not confirmed yet, sent or not."""
        return [
            r
            for r in self.store.ledger.erase_requests(pending_only=True)
            if r.endpoint == self.endpoint.region
        ]

    def erasures_unconfirmed(self) -> bool:
        """Erase requests sent to this endpoint and not confirmed yet."""
        return any(r.sent_at is not None for r in self.erasures_pending())

    async def _connection(self, stop: asyncio.Event | None, confirm_timeout: float | None) -> None:
        client = self.endpoint.client()
        if not isinstance(client, CheckedClient):
            raise TypeError(f"the uploader publishes through a CheckedClient, not {client!r}")
        session = _Session(self, client)
        try:
            await self._converse(client, session, stop, confirm_timeout)
        except BaseException as leaving:
            await session.settle_on_the_way_out(session.record(), leaving)
            raise
        await session.record()  # what the connection sent since its last record

    async def _converse(
        self,
        client: CheckedClient,
        session: _Session,
        stop: asyncio.Event | None,
        confirm_timeout: float | None,
    ) -> None:
        """The connection's work, its errors out of the task group's wrappers: apart from
        its last record, which ``_connection`` makes after the connection closed."""
        try:
            async with client, asyncio.TaskGroup() as group:
                listener = group.create_task(session.listen())
                await session.subscribe_pending()
                if stop is None:
                    await session.drain()
                    if confirm_timeout:
                        # Expiry is not an error: the requests stay pending and are listed.
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(confirm_timeout):
                                await session.await_confirmations()
                else:
                    while not stop.is_set():
                        self._wake.clear()
                        if not await session.drain(live=True):
                            break  # ``_serve`` connects again when it is worth it
                        await self._wake.wait()  # ``run`` sets it on ``stop`` too
                await session.stop_listening(listener)
        except* (aiomqtt.MqttError, StoreFullError) as errors:
            raise _first_leaf(errors) from None


def _owed(requests: list[ledger.EraseRequest], now: int) -> list[ledger.EraseRequest]:
    """The requests never sent, or sent long enough ago to send again."""
    return [r for r in requests if r.sent_at is None or now - r.sent_at >= ERASE_RESEND_AFTER_S]


def _connection_failed(error: BaseException) -> bool:
    """A lost or refusing broker, or a full disk (the upload position stays where the
    store has it; sent again later), is tried again."""
    return isinstance(error, aiomqtt.MqttError | StoreFullError)


async def _retrying(error: BaseException, delay: float) -> None:
    # A refusal is the broker's configuration (ACL, quota): the operator acts.
    refused = isinstance(error, MqttRefusedError)
    level, what = (logging.ERROR, "refused") if refused else (logging.WARNING, "lost")
    log.log(level, "upload %s (%s); retrying in %.1fs", what, error, delay)


async def _set_when(stop: asyncio.Event, wake: asyncio.Event) -> None:
    await stop.wait()
    wake.set()


def _outcome(ack: asyncio.Future[None], timeout: float) -> BaseException | None:
    """None for an acknowledged publish, else why not (a cancelled one missed the deadline)."""
    if ack.cancelled():
        return aiomqtt.MqttError(f"publish not acknowledged within {timeout:g} s")
    return ack.exception()


async def _settled_in_order(acks: list[asyncio.Future[None]]) -> None:
    """Wait for ``acks`` one by one until the first that failed.

    A broker acknowledges a connection's QoS 1 publishes in the order it received them
    (MQTT 3.1.1 section 4.6, and 5.0 alike), so the wait is on one future at a time;
    ``asyncio.wait`` added and removed a callback on every one of a chunk's futures, a
    tenth of the publisher's time. A failure stays in its future for the caller to read.
    """
    for ack in acks:
        try:
            await ack
        except Exception:  # it stays in the future, for the caller
            return


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The connection error itself, out of the (possibly nested) task-group wrappers."""
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


# A device, the last seq its endpoint acknowledged, and the chunk after it if already read.
_Due = tuple[DeviceRecord, int, Chunk | None]


@dataclass(frozen=True)
class _DrainState:
    """What a drain reads besides samples, as of ``Store.version`` ``version``: it changes
    seldom, and live a drain runs every second (the chunk read carries its own consents,
    which the policy gate decides on)."""

    version: tuple[int, int]
    pending: list[ledger.EraseRequest]  # erase requests for this endpoint, not confirmed
    consents: UploadConsents | None  # ``Uploader.consents``
    account: ledger.AccountRow | None
    positions: list[tuple[DeviceRecord, int | None]]  # a guest's: none read


class _Session:
    """What one broker connection knows: subscriptions made, device info already sent."""

    def __init__(self, uploader: Uploader, client: CheckedClient) -> None:
        self.up = uploader
        self.store = uploader.store
        self.client = client
        self.prefix = uploader.endpoint.prefix
        self.region = uploader.endpoint.region
        self.subscribed: set[str] = set()
        self.info_sent: set[str] = set()
        # Per device, the refusal last logged: a connection that stays up while cloud sync
        # is off meets it at every commit (each second, live), and logs it once.
        self._refused: dict[str, str] = {}
        # Acknowledged but not yet committed (``record``): upload positions, and samples sent.
        self._unrecorded_positions: dict[str, int] = {}
        self._unrecorded_samples = 0
        self._sent_at: int | None = None  # policy check of the newest acknowledged chunk
        self._recorded_at: float | None = None  # loop time of the last ``record``
        self._named = False  # a durable record has named the endpoint (``_start_record``)
        self._state: _DrainState | None = None
        # The last record's commit; each one waits for the one before (``record``).
        self._records: asyncio.Future[None] | None = None
        # The record failure logged on the way out of a session (``settle_on_the_way_out``).
        self._unrecorded_logged: BaseException | None = None
        self._confirmed = asyncio.Event()
        # Held while a confirmation is recorded, counted and cleared, and while the pending
        # requests are looked up: a lookup never sees it half done.
        self._recording = asyncio.Lock()

    def topics(self, user: str) -> Topics:
        return Topics(self.prefix, self.region, user)

    async def subscribe_pending(self) -> None:
        """Listen for confirmations of every erasure still owed to this endpoint."""
        pending = await self.up.blocking(self.store.ledger.erase_requests, pending_only=True)
        for request in pending:
            if request.endpoint == self.region:
                await self._subscribe(request.user_pseudonym)

    async def _subscribe(self, user: str) -> None:
        if user not in self.subscribed:
            await self.client.subscribe(self.topics(user).erase_confirmed_filter, qos=1)
            self.subscribed.add(user)

    async def listen(self) -> None:
        """Erase confirmations; raises ``MqttError`` when the connection drops."""
        async for message in self.client.messages:
            payload = bytes(message.payload) if isinstance(message.payload, bytes) else b""
            if not payload:
                continue  # our own clearing of a retained confirmation
            try:
                topics, rest = parse_topic(self.prefix, str(message.topic))
                request_id = int(decode_json(payload)["id"])
            except (PayloadError, KeyError, TypeError, ValueError) as error:
                log.warning("ignoring malformed erase confirmation: %s", error)
                continue
            if topics.user not in self.subscribed or rest != [
                "erase",
                str(request_id),
                "confirmed",
            ]:
                continue
            async with self._recording:
                await self.up.blocking(self.store.ledger.mark_erase_confirmed, request_id)
                # The receiver retains the confirmation for us; now it is recorded, clear it.
                await self.client.publish(str(message.topic), b"", qos=1, retain=True)
                self.up.stats.erase_confirmed += 1
                self._confirmed.set()
                self.up.wake()  # the last owed erasure confirmed: a refused upload leaves

    async def stop_listening(self, listener: asyncio.Task[None]) -> None:
        """Cancel ``listener``, never while it records a confirmation: that ends whole
        (its retained copy cleared), and a cancellation landing as aiomqtt's ``publish``
        completes is lost (``asyncio.wait_for`` before Python 3.12), which left the
        listener running and the connection open."""
        async with self._recording:
            listener.cancel()

    async def await_confirmations(self) -> None:
        while True:
            self._confirmed.clear()  # before looking, so no confirmation slips between
            async with self._recording:
                if not await self.up.blocking(self.up.erasures_unconfirmed):
                    return
            await self._confirmed.wait()

    async def drain(self, *, live: bool = False) -> bool:
        """Send what is owed. ``live`` (``run``): whether the connection is worth keeping
        afterwards: cloud sync withdrawn, it ends (what it sent is recorded as it closes)
        unless an erasure is owed to this endpoint, to send or to be confirmed over it."""
        due, account, devices, keep = await self.up.blocking(
            self._due, dict(self._unrecorded_positions), live
        )
        if due:
            await self.record()  # erase requests are bounded by the committed upload positions
        for request in due:
            await self._subscribe(request.user_pseudonym)
            message = await self.up.blocking(erase_message, self.store, request)
            await self.client.publish(
                self.topics(request.user_pseudonym).erase, message.encode(), qos=1
            )
            await self.up.blocking(self.store.ledger.mark_erase_sent, request.id)
            self.up.stats.erase_sent += 1
        if account is None or account.guest:
            return keep  # PR-GUEST: not even a device list is read for upload
        topics = self.topics(account.pseudonym)
        try:
            for device, position, first in devices:
                await self._upload_device(device, position, first, topics)
        except BaseException as leaving:
            await self.settle_on_the_way_out(self.record(), leaving)
            raise
        if self._record_due():
            await self.record()
        return keep

    def _record_due(self) -> bool:
        """The first upload of a connection is recorded at once (the ledger names the
        endpoint before anything more goes), later ones every ``record_every`` seconds."""
        if self._recorded_at is None:
            return True
        return asyncio.get_running_loop().time() - self._recorded_at >= self.up.record_every

    async def record(self) -> None:
        """Commit the acknowledged upload positions and the disclosure row of what was sent
        since the last record, together (one fsync). What it covers is taken when it is
        called; it commits after the records before it and runs to the end even if
        cancelled."""
        commit = self._start_record(behind=False)
        if commit is not None:
            await asyncio.shield(commit)

    async def settle_on_the_way_out(self, records: Awaitable[None], leaving: BaseException) -> None:
        """Await ``records`` (a ``record``, or the ones in flight) while ``leaving`` (a
        failure or a cancellation) is on its way, which stays what is raised. A record
        that fails then (a full disk) has handed what it covered back, and the next
        session sends that again; it is logged once (the records chained behind it fail
        with it). Raised instead, it turned a cancelled upload into a full disk's error,
        which the uploader retries: it went on instead of stopping."""
        try:
            await records
        except Exception as error:
            if error is leaving or error is self._unrecorded_logged:
                return
            self._unrecorded_logged = error
            log.warning(
                "upload positions not recorded (%s): the next session sends what they cover again",
                error,
                exc_info=not isinstance(error, StoreFullError),  # a bug shows where it is
            )

    def _start_record(self, *, behind: bool) -> asyncio.Future[None] | None:
        """The commit of what is unrecorded now, chained behind the one before; that one
        alone when nothing is (None: none). A failed commit hands what it covered back to
        the session and fails every commit chained behind it, which hand theirs back too:
        an upload position is never committed ahead of the disclosure of what it covers.
        What was handed back goes with the next record, or again in the next session."""
        previous = self._records
        if not self._unrecorded_positions and not self._unrecorded_samples:
            return previous
        positions, sent = self._unrecorded_positions, self._unrecorded_samples
        self._unrecorded_positions, self._unrecorded_samples = {}, 0
        # Behind a long upload: without the fsync (a power loss takes it back whole, and its
        # data goes again), but for the connection's first, which names the endpoint; and
        # it does not put off the session's own record.
        durable = not behind or not self._named
        self._named = True
        if not behind:
            self._recorded_at = asyncio.get_running_loop().time()
        disclosure = None
        if sent:
            # Dated when the policy last allowed what it covers, not when it is written:
            # a withdrawal in between stopped what came after, not what went before.
            recipient = cloud_recipient(self.region)
            disclosure = ledger.NewDisclosure(
                recipient, CLOUD_UPLOAD_PURPOSE, CLOUD_CATEGORIES, sent, self._sent_at
            )

        async def commit() -> None:
            try:
                if previous is not None:
                    await previous
                await self.up.blocking(
                    self.store.ledger.record_upload,
                    self.region,
                    positions,
                    disclosure,
                    durable=durable,
                )
            except BaseException:
                self._hand_back(positions, sent)
                raise

        self._records = asyncio.ensure_future(commit())
        return self._records

    def _hand_back(self, positions: dict[str, int], sent: int) -> None:
        """A record that failed: what it covered is unrecorded again."""
        unrecorded = self._unrecorded_positions
        for device, seq in positions.items():
            unrecorded[device] = max(seq, unrecorded.get(device, seq))
        self._unrecorded_samples += sent

    def _record_behind(self) -> None:
        """``record`` without waiting for it or its fsync, behind the ones before: within a
        long upload, so that the reader of the next chunk never waits behind a commit's
        fsync under the store's lock. The first of a connection is durable all the same:
        it names the endpoint in the ledger before more goes (``upload_endpoints``, which an
        erasure reaches)."""
        self._start_record(behind=True)

    def _record_failed(self) -> bool:
        """A record has failed: the upload stops, and ``_settle_records`` raises why."""
        records = self._records
        return records is not None and records.done() and records.exception() is not None

    async def _settle_records(self) -> None:
        """Wait for the records in flight (even when cancelled); a failure (a full disk) is
        the upload's."""
        if self._records is not None:
            await asyncio.shield(self._records)

    def _due(
        self, unrecorded: dict[str, int], live: bool
    ) -> tuple[list[ledger.EraseRequest], ledger.AccountRow | None, list[_Due], bool]:
        """What a drain needs from the store, in one ``blocking`` trip: the erase
        requests due, the account and, unless it is a guest, each device, its upload
        position (or the acknowledged one not yet recorded) and, when no erasure is due (it
        must go first), the first chunk past it. Live that chunk is all there is: one trip.
        Last, when ``live``, whether the connection is worth keeping (``drain``): a change
        after this read wakes the uploader, and the next drain reads it."""
        state = self._drain_state()
        due = _owed(state.pending, self.store.now())
        keep = not live or bool(state.pending) or self.up.decide(state.consents) is None
        if state.account is None or state.account.guest:
            return due, state.account, [], keep
        devices = []
        for device, position in state.positions:
            after = max(-1 if position is None else position, unrecorded.get(device.address, -1))
            devices.append((device, after, None if due else self._read_chunk(device, after)))
        return due, state.account, devices, keep

    def _drain_state(self) -> _DrainState:
        """The ledger as the store holds it: read again only when ``Store.version`` moved
        (the version first, so a change made during the reads moves it for the next)."""
        version = self.store.version()
        if self._state is not None and self._state.version == version:
            return self._state
        pending = self.up.erasures_pending()
        consents = self.up.consents()
        account = self.store.ledger.get_account()
        positions = []
        if account is not None and not account.guest:
            positions = [
                (device, self.store.ledger.get_upload_position(device.address, self.region))
                for device in self.store.list_devices()
            ]
        self._state = _DrainState(version, pending, consents, account, positions)
        return self._state

    def _read_chunk(self, device: DeviceRecord, after_seq: int) -> Chunk:
        up = self.up
        return read_chunk(
            self.store, device, after_seq, up.batch_size, up.window, self.region, up.decide
        )

    async def _upload_device(
        self, device: DeviceRecord, position: int, first: Chunk | None, topics: Topics
    ) -> None:
        """Everything of ``device`` past ``position``, the acknowledged upload position and
        count kept for the next ``record``.

        ``first``, the chunk past ``position`` when the drain read it already: when it is
        the last, it is simply published. Otherwise a reader task reads the next chunks
        (the policy decided per batch, on the state read with it) while the current one
        awaits its PUBACKs, and records run behind the publishing every
        ``record_every_chunks`` chunks, so store reads and commits overlap the network round
        trips; what the last of them did not cover is left for the next ``record``.
        """
        if first is not None and not self._more(first):
            failure = await self._send(device, first, topics)
        else:
            failure = await self._stream(device, position, first, topics)
        if failure is not None:
            raise failure

    async def _stream(
        self, device: DeviceRecord, position: int, first: Chunk | None, topics: Topics
    ) -> BaseException | None:
        # Bounded by the producer: WAITING_CHUNKS, plus one trip's reads (READ_AHEAD).
        chunks: asyncio.Queue[Chunk] = asyncio.Queue()
        taken = asyncio.Event()
        ended = threading.Event()  # read where ``blocking`` reads
        failure: BaseException | None = None
        unrecorded_chunks = 0
        leaving: BaseException | None = None  # a failure or a cancellation on its way
        async with asyncio.TaskGroup() as group:
            producer = group.create_task(
                self._produce(device, position, first, chunks, taken, ended)
            )
            try:
                while True:
                    chunk = await chunks.get()
                    taken.set()
                    failure = await self._send(device, chunk, topics)
                    unrecorded_chunks += 1
                    if unrecorded_chunks == self.up.record_every_chunks:
                        self._record_behind()
                        unrecorded_chunks = 0
                    if failure is not None or not self._more(chunk) or self._record_failed():
                        break
            except BaseException as error:
                leaving = error
                raise
            finally:
                ended.set()  # a trip still reading stops at its next chunk
                producer.cancel()  # after a failure it waits for room nobody makes
                if leaving is None:
                    await self._settle_records()
                else:
                    await self.settle_on_the_way_out(self._settle_records(), leaving)
        return failure

    async def _send(
        self, device: DeviceRecord, chunk: Chunk, topics: Topics
    ) -> BaseException | None:
        """One chunk (device info first, once per connection); its acknowledged prefix
        kept for the next record; the first failure."""
        if chunk.batches and device.pseudonym not in self.info_sent:
            await self._send_info(device, topics)
        acked, count, failure = await self._publish(topics.samples(device.pseudonym), chunk)
        self._unrecorded_samples += count
        if acked:
            self._sent_at = chunk.checked_at
            last_seq = chunk.batches[acked - 1].last_seq
            self._unrecorded_positions[device.address] = last_seq
            if self.up.on_acked is not None:
                self.up.on_acked(device.address, last_seq)
        if chunk.refusal is not None and failure is None:
            if self._refused.get(device.address) != chunk.refusal:
                log.info("upload stopped: %s", chunk.refusal)
            self._refused[device.address] = chunk.refusal
        elif acked:
            self._refused.pop(device.address, None)
        return failure

    def _more(self, chunk: Chunk) -> bool:
        up = self.up
        return (
            chunk.refusal is None
            and len(chunk.batches) == up.window
            and chunk.batches[-1].count == up.batch_size
        )

    async def _produce(
        self,
        device: DeviceRecord,
        position: int,
        first: Chunk | None,
        chunks: asyncio.Queue[Chunk],
        taken: asyncio.Event,
        ended: threading.Event,
    ) -> None:
        loop = asyncio.get_running_loop()

        def deliver(chunk: Chunk) -> bool:
            """Hand ``chunk`` to the publisher; False once the stream has ended."""
            if ended.is_set():
                return False
            loop.call_soon_threadsafe(chunks.put_nowait, chunk)
            return True

        last = first
        if first is not None:
            chunks.put_nowait(first)
        while last is None or self._more(last):
            while chunks.qsize() > WAITING_CHUNKS:
                await taken.wait()
                taken.clear()
            if last is not None:
                position = last.batches[-1].last_seq
            last = await self.up.blocking(self._read_ahead, device, position, deliver)
            # The trip's chunks reach the queue in callbacks on the loop (``deliver``): a
            # trip run on the loop itself (an agent fleet's ``OnLoop``) returns before
            # they ran, and the queue would look empty to the next round. They are first
            # in the loop's queue, so one turn lets them land.
            await asyncio.sleep(0)

    def _read_ahead(
        self, device: DeviceRecord, after_seq: int, deliver: Callable[[Chunk], bool]
    ) -> Chunk:
        """Up to ``READ_AHEAD`` chunks in one trip to a worker thread, each handed to the
        publisher as soon as it is read, until it wants no more; returns the last. A trip
        back to the event loop between two reads waited behind the publisher's work, and
        the publisher then waited for the reader."""
        for _ in range(READ_AHEAD):
            chunk = self._read_chunk(device, after_seq)
            if not deliver(chunk) or not self._more(chunk):
                break
            after_seq = chunk.batches[-1].last_seq
        return chunk

    async def _publish(self, topic: str, chunk: Chunk) -> tuple[int, int, BaseException | None]:
        """Publish a chunk: (batches, samples) of its acknowledged prefix, first failure.

        One deadline for the chunk (the client's timeout) instead of aiomqtt's per-publish
        ``wait_for``, whose task and timer per message cost as much as the publish itself,
        and no task per message either (``CheckedClient.publish_acked``).
        """
        if not chunk.batches:
            return 0, 0, None
        acks = self.client.publish_acked(topic, [b.payload for b in chunk.batches])
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.client.timeout):
                    await _settled_in_order(acks)
        finally:
            for ack in acks:
                ack.cancel()  # no-op once done; else it missed the deadline, or we are cancelled
        outcomes = [_outcome(ack, self.client.timeout) for ack in acks]
        acked = next((i for i, o in enumerate(outcomes) if o is not None), len(outcomes))
        count = sum(b.count for b in chunk.batches[:acked])
        self.up.stats.batches += acked
        self.up.stats.samples += count
        return acked, count, outcomes[acked] if acked < len(outcomes) else None

    async def _send_info(self, device: DeviceRecord, topics: Topics) -> None:
        """Model and firmware under the device pseudonym (PR-DEVICE); never serial or MAC."""
        self.info_sent.add(device.pseudonym)
        if device.model is None and device.firmware is None:
            return
        info = encode_json({"model": device.model, "firmware": device.firmware})
        await self.client.publish(topics.device_info(device.pseudonym), info, qos=1)
