"""Music service codecs: now-playing state (phone -> watch) and the watch's remote buttons."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Self

from protocol import uuids
from protocol._bytes import Reader, Writer, check_range, encode_utf8, enum_member
from protocol.alerts import check_text_length, truncate_utf8
from protocol.errors import RangeError
from protocol.profile import characteristic

MUSIC_STATE = characteristic(uuids.MUSIC_STATE).name
MUSIC_EVENT = characteristic(uuids.MUSIC_EVENT).name

MAX_TRACK_TEXT_BYTES = 64
MAX_VOLUME = 100


class Playback(enum.IntEnum):
    STOPPED = 0
    PLAYING = 1
    PAUSED = 2


@dataclass(frozen=True, slots=True)
class MusicState:
    """What the phone is playing. ``duration_s`` 0 means unknown (e.g. a live stream)."""

    playback: Playback
    volume: int
    position_s: int
    duration_s: int
    title: str
    artist: str

    @classmethod
    def truncated(
        cls,
        playback: Playback,
        volume: int,
        position_s: int,
        duration_s: int,
        title: str,
        artist: str,
    ) -> Self:
        """Build one whose texts are cut (on character boundaries) to their byte budgets."""
        return cls(
            playback,
            volume,
            position_s,
            duration_s,
            truncate_utf8(title, MAX_TRACK_TEXT_BYTES),
            truncate_utf8(artist, MAX_TRACK_TEXT_BYTES),
        )

    def _check(self) -> None:
        check_range(MUSIC_STATE, "volume", self.volume, 0, MAX_VOLUME)
        if self.duration_s and self.position_s > self.duration_s:
            raise RangeError(
                MUSIC_STATE, f"position {self.position_s} s past duration {self.duration_s} s"
            )

    def encode(self) -> bytes:
        self._check()
        title = encode_utf8(self.title, MUSIC_STATE, "title", MAX_TRACK_TEXT_BYTES)
        artist = encode_utf8(self.artist, MUSIC_STATE, "artist", MAX_TRACK_TEXT_BYTES)
        w = Writer(MUSIC_STATE).u8(int(self.playback), "playback").u8(self.volume, "volume")
        w.u32(self.position_s, "position").u32(self.duration_s, "duration")
        w.u8(len(title)).u8(len(artist))
        return w.raw(title).raw(artist).getvalue()

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = Reader(data, MUSIC_STATE)
        playback = enum_member(Playback, r.u8("playback"), MUSIC_STATE, "playback")
        volume, position, duration = r.u8("volume"), r.u32("position"), r.u32("duration")
        title_length, artist_length = r.u8("title length"), r.u8("artist length")
        check_text_length(MUSIC_STATE, "title", title_length, MAX_TRACK_TEXT_BYTES)
        check_text_length(MUSIC_STATE, "artist", artist_length, MAX_TRACK_TEXT_BYTES)
        state = cls(
            playback,
            volume,
            position,
            duration,
            r.utf8(title_length, "title"),
            r.utf8(artist_length, "artist"),
        )
        r.end()
        state._check()
        return state


class MusicCommand(enum.IntEnum):
    PLAY = 1
    PAUSE = 2
    NEXT = 3
    PREVIOUS = 4
    VOLUME_UP = 5
    VOLUME_DOWN = 6
    SET_VOLUME = 7  # the only command with an operand: the volume, 0-100


@dataclass(frozen=True, slots=True)
class MusicEvent:
    """A button pressed on the watch; ``volume`` is set only for SET_VOLUME."""

    command: MusicCommand
    volume: int | None = None

    def _check(self) -> None:
        if (self.command is MusicCommand.SET_VOLUME) != (self.volume is not None):
            raise RangeError(MUSIC_EVENT, f"{self.command.name} with volume {self.volume}")

    def encode(self) -> bytes:
        self._check()
        w = Writer(MUSIC_EVENT).u8(int(self.command), "command")
        if self.volume is not None:
            w.u8(check_range(MUSIC_EVENT, "volume", self.volume, 0, MAX_VOLUME), "volume")
        return w.getvalue()

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = Reader(data, MUSIC_EVENT)
        command = enum_member(MusicCommand, r.u8("command"), MUSIC_EVENT, "command")
        volume = None
        if command is MusicCommand.SET_VOLUME:
            volume = check_range(MUSIC_EVENT, "volume", r.u8("volume"), 0, MAX_VOLUME)
        r.end()
        return cls(command, volume)
