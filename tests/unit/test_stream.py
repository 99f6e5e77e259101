"""`message:delta` coalescing, on a clock the test moves: the first piece at once, then at
most one push per interval carrying every piece since, the rest on flush; a reset drops
what is held; joined, the pushes are the model's text."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from neolith_orchestrator.daemons.stream import ChannelStream
from neolith_orchestrator.realtime.emitter import RecordingEmitter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class TimedEmitter(RecordingEmitter):
    """Records, with each push, the time on the test's clock."""

    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self.clock = clock
        self.at: list[float] = []

    async def emit(self, event: str, data: dict[str, Any], *, room: str) -> None:
        self.at.append(self.clock.now)
        await super().emit(event, data, room=room)


def _stream(emitter: RecordingEmitter, clock: Clock, interval: float = 0.05) -> ChannelStream:
    return ChannelStream(
        emitter,
        channel_id=uuid.uuid4(),
        job_id=uuid.uuid4(),
        reply_to_id=uuid.uuid4(),
        author_id=uuid.uuid4(),
        orchestrator_id=uuid.uuid4(),
        interval=interval,
        clock=clock,
    )


async def test_the_first_piece_goes_at_once_then_one_push_per_interval() -> None:
    clock = Clock()
    emitter = TimedEmitter(clock)
    stream = _stream(emitter, clock)
    pieces = [f"w{i} " for i in range(75)]
    for i, piece in enumerate(pieces):
        clock.now = 100.0 + i * 0.002  # 75 pieces in 150 ms
        await stream.delta(piece)
        if i == 0:
            assert [d["delta"] for d in emitter.of("message:delta")] == ["w0 "]
    await stream.flush()
    pushes = emitter.of("message:delta")
    assert "".join(d["delta"] for d in pushes) == "".join(pieces)
    assert len(pushes) <= 1 + 150 // 50 + 1
    assert [d["seq"] for d in pushes] == list(range(1, len(pushes) + 1))
    # Every push but the flush's is at least one interval after the one before.
    assert all(b - a >= 0.05 - 1e-9 for a, b in itertools.pairwise(emitter.at[:-1]))


async def test_a_reset_drops_what_is_held_and_the_retry_starts_at_once() -> None:
    emitter, clock = RecordingEmitter(), Clock()
    stream = _stream(emitter, clock)
    await stream.delta("Hel")
    await stream.delta("lo wor")  # held: within the interval
    await stream.reset()
    await stream.delta("Hello")  # the retry's first piece: at once
    await stream.flush()
    pushes = [(d["delta"], d["reset"]) for d in emitter.of("message:delta")]
    assert pushes == [("Hel", False), ("", True), ("Hello", False)]


async def test_interval_zero_pushes_every_piece_and_flush_adds_nothing() -> None:
    emitter, clock = RecordingEmitter(), Clock()
    stream = _stream(emitter, clock, interval=0)
    for piece in ("a", "b", "c"):
        await stream.delta(piece)
    await stream.flush()
    assert [d["delta"] for d in emitter.of("message:delta")] == ["a", "b", "c"]
