// Boot and routing: the login form, then a shell (header, navigation, connection state)
// around one view chosen by the URL hash: #/channels/<id> (chat) or #/admin (daemons).
import { AdminView } from "./admin.js";
import { api, endSession, onSessionEnded, session } from "./api.js";
import { ChatView } from "./chat.js";
import { h } from "./dom.js";
import { renderLogin } from "./login.js";
import { Realtime } from "./realtime.js";

const root = document.getElementById("app");
let realtime = null;
let view = null;
let main = null;
let nav = null;

const STATE_LABELS = { online: "Connected", offline: "Reconnecting…", connecting: "Connecting…" };

function showLogin(notice) {
  view?.destroy();
  view = null;
  realtime?.close();
  realtime = null;
  renderLogin(root, { notice, onLoggedIn: startSession });
}

function startSession() {
  realtime = new Realtime();
  const connection = h("span", { class: "connection", role: "status", "data-state": "connecting" },
    STATE_LABELS.connecting);
  realtime.addEventListener("state", (event) => {
    connection.dataset.state = event.detail;
    connection.textContent = STATE_LABELS[event.detail] ?? event.detail;
  });
  const links = [h("a", { href: "#/", "data-nav": "chat" }, "Chat")];
  if (session.user.is_admin) links.push(h("a", { href: "#/admin", "data-nav": "admin" }, "Daemons"));
  nav = h("nav", { class: "top-nav", "aria-label": "Main" }, links);
  const header = h(
    "header", { class: "app-header" },
    h("span", { class: "brand" }, "Neolith"),
    nav,
    connection,
    h("span", { class: "whoami" }, session.user.name,
      session.user.is_admin ? h("span", { class: "badge" }, "admin") : null),
    h("button", { type: "button", class: "quiet", onclick: logout }, "Log out"),
  );
  main = h("main", { id: "main", tabindex: "-1" });
  root.replaceChildren(header, main);
  route();
}

async function logout() {
  try {
    await api("/api/auth/logout", { method: "POST" });
  } catch {
    // Logged out or unreachable: either way this tab forgets the token.
  }
  endSession("You have logged out.");
}

function route() {
  if (!session.token || !main) return;
  const hash = location.hash || "#/";
  const section = hash.startsWith("#/admin") ? "admin" : "chat";
  for (const link of nav.querySelectorAll("a")) {
    if (link.dataset.nav === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  view?.destroy();
  if (section === "admin") {
    view = session.user.is_admin ? new AdminView(main, realtime) : null;
    if (!view) {
      main.replaceChildren(h("p", { class: "notice", role: "alert" },
        "The daemons view is for organization admins."));
    }
  } else {
    const match = /^#\/channels\/([0-9a-f-]{36})/.exec(hash);
    view = new ChatView(main, realtime, match ? match[1] : null);
  }
}

window.addEventListener("hashchange", route);
onSessionEnded((message) => showLogin(message));
showLogin("");
