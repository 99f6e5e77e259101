"""Real-time delivery: rooms and the one emitter (`emitter`), the Socket.IO server (`server`)."""
