"""The Socket.IO JSON module of our server: the depth cap on packets, and the bytes the Redis
client manager hands it (its pub/sub messages are decoded with the same module)."""

from __future__ import annotations

import json

from neolith_orchestrator.http.decoding import TooDeep
from neolith_orchestrator.realtime.packets import GuardedPacket


def test_pubsub_messages_arrive_as_bytes_and_decode() -> None:
    message = {"method": "emit", "event": "message:new", "data": {"id": "m1"}}
    assert GuardedPacket.json.loads(json.dumps(message).encode()) == message


def test_a_packet_nested_too_deep_becomes_a_refusable_payload() -> None:
    event, payload = GuardedPacket.json.loads('["message:send", ' + "[" * 5000 + "]" * 5000 + "]")
    assert event == "message:send"
    assert isinstance(payload, TooDeep)
