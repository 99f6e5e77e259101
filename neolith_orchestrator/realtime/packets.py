"""Socket.IO packets decoded with the same depth cap as HTTP bodies.

python-socketio decodes each packet's JSON before any handler runs; nested deep enough, the
decoder's recursion error escapes as a logged traceback and the sender gets no
acknowledgement at all. This packet class (given to our server only, as its `serializer`)
checks the depth first and hands the handler a `TooDeep` payload instead, which
`inputs.parse` refuses like any other bad input: the ack names the problem.
"""

from __future__ import annotations

import json
import re
from typing import Any

from engineio import json as engineio_json
from socketio import packet

from neolith_orchestrator.http.decoding import TooDeep, too_deep

# An event packet's JSON starts with the event name: `["message:send", ...`.
_EVENT = re.compile(r'\s*\[\s*("(?:[^"\\]|\\.)*")')


class _GuardedJson:
    """The `json` module python-socketio expects: `dumps` as is, `loads` depth-checked."""

    dumps = staticmethod(json.dumps)

    @staticmethod
    def loads(text: str | bytes, **kwargs: Any) -> Any:
        # The Redis client manager reads its pub/sub messages with this module too, as bytes.
        if isinstance(text, bytes | bytearray):
            text = text.decode("utf-8")
        if too_deep(text):
            event = _EVENT.match(text)
            if event is None:
                raise ValueError("JSON nested too deep")
            return [json.loads(event.group(1)), TooDeep()]
        return engineio_json.loads(text, **kwargs)


class GuardedPacket(packet.Packet):  # type: ignore[misc]
    json = _GuardedJson
