// The Socket.IO connection. The client library reconnects by itself after a network drop;
// every reconnect after the first connect fires "resync" so views fetch what they missed.
import { io } from "../vendor/socket.io.esm.min.js";
import { api, endSession, session } from "./api.js";

export class Realtime extends EventTarget {
  constructor() {
    super();
    this.state = "connecting";
    this.connectedOnce = false;
    this.socket = io({
      auth: (cb) => cb({ token: session.token }),
      reconnectionDelay: 500,
      reconnectionDelayMax: 5000,
    });
    this.socket.on("connect", () => {
      this.setState("online");
      if (this.connectedOnce) this.dispatchEvent(new Event("resync"));
      this.connectedOnce = true;
    });
    this.socket.on("disconnect", (reason) => {
      this.setState("offline");
      // The server closed us (logout, expired session) or we closed: the library will not
      // retry, so ask the API whether the session is still good and reconnect if it is.
      if (reason === "io server disconnect") this.recheck();
    });
    this.socket.on("connect_error", (err) => {
      this.setState("offline");
      if (err?.data?.code === "unauthenticated") {
        endSession("Your session has ended. Please log in again.");
      } else if (!this.socket.active) {
        // Refused by the server for another reason (starting, shutting down): try again.
        this.retry = setTimeout(() => this.socket.connect(), 2000);
      }
    });
  }

  setState(state) {
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: state }));
  }

  async recheck() {
    if (!session.token) return;
    try {
      await api("/api/auth/me");
      this.socket.connect();
    } catch {
      // api() has already ended the session on a 401; a network error retries later.
      if (session.token) this.retry = setTimeout(() => this.recheck(), 2000);
    }
  }

  on(event, handler) {
    this.socket.on(event, handler);
    return () => this.socket.off(event, handler);
  }

  /** `message:send` with an acknowledgement; rejects after `timeoutMs` without one. */
  send(payload, timeoutMs = 10000) {
    return this.socket.timeout(timeoutMs).emitWithAck("message:send", payload);
  }

  close() {
    clearTimeout(this.retry);
    this.socket.disconnect();
  }
}
