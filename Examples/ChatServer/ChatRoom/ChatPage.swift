// swift-format-ignore-file
/// The chat page: one self-contained HTML document (no CDN, nothing from the network).
enum ChatPage {
    static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>DispatchWebSocket Chat</title>
<style>
  :root { --bg:#0f172a; --panel:#111827; --card:#1f2937; --line:#273244; --text:#e5e7eb; --muted:#94a3b8;
          --accent:#6366f1; --accent2:#22d3ee; --ok:#22c55e; --warn:#f59e0b; --bad:#ef4444; }
  * { box-sizing: border-box; }
  html, body { height: 100%; margin: 0; }
  body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: var(--bg); color: var(--text); }
  .app { display: grid; grid-template-rows: auto 1fr; height: 100%; max-width: 1100px; margin: 0 auto; }
  header { display: flex; align-items: center; gap: 12px; padding: 14px 20px; border-bottom: 1px solid var(--line); }
  .logo { width: 34px; height: 34px; border-radius: 10px; background: linear-gradient(135deg, var(--accent), var(--accent2));
          display: grid; place-items: center; font-weight: 700; color: white; }
  header h1 { font-size: 17px; margin: 0; font-weight: 650; }
  header .sub { color: var(--muted); font-size: 13px; }
  .state { margin-left: auto; display: flex; align-items: center; gap: 8px; font-size: 13px; color: var(--muted);
           background: var(--panel); border: 1px solid var(--line); padding: 6px 12px; border-radius: 999px; }
  .dot { width: 9px; height: 9px; border-radius: 50%; background: var(--warn); box-shadow: 0 0 8px var(--warn); }
  .state.open .dot { background: var(--ok); box-shadow: 0 0 8px var(--ok); }
  .state.closed .dot { background: var(--bad); box-shadow: 0 0 8px var(--bad); }
  main { display: grid; grid-template-columns: 230px 1fr; min-height: 0; }
  aside { border-right: 1px solid var(--line); padding: 16px; overflow-y: auto; }
  aside h2 { font-size: 12px; letter-spacing: .08em; text-transform: uppercase; color: var(--muted); margin: 0 0 10px; }
  .user { display: flex; align-items: center; gap: 10px; padding: 6px 8px; border-radius: 8px; }
  #users.stale { opacity: .45; }
  .user.me { background: rgba(99,102,241,.15); }
  .avatar { width: 28px; height: 28px; border-radius: 50%; display: grid; place-items: center; font-size: 13px; font-weight: 700; color: white; flex: none; }
  section { display: grid; grid-template-rows: 1fr auto; min-height: 0; }
  #log { overflow-y: auto; padding: 18px 22px; display: flex; flex-direction: column; gap: 10px; }
  #log > :first-child { margin-top: auto; }  /* new messages appear at the bottom, like any chat */
  .msg { display: flex; gap: 10px; max-width: 80%; }
  .msg.mine { align-self: flex-end; flex-direction: row-reverse; }
  .bubble { background: var(--card); border: 1px solid var(--line); padding: 8px 12px; border-radius: 14px; border-top-left-radius: 4px; }
  .msg.mine .bubble { background: linear-gradient(135deg, #4f46e5, #6366f1); border-color: transparent; border-top-left-radius: 14px; border-top-right-radius: 4px; }
  .msg.cont { margin-top: -6px; } .msg.cont .avatar { visibility: hidden; } .msg.cont .meta { display: none; }
  .msg.cont .bubble { border-top-left-radius: 14px; } .msg.mine.cont .bubble { border-top-right-radius: 14px; }
  .empty { align-self: center; color: var(--muted); font-size: 13px; }
  .meta { font-size: 12px; color: var(--muted); margin-bottom: 2px; }
  .msg.mine .meta { color: #c7d2fe; }
  .text { white-space: pre-wrap; word-wrap: break-word; }
  .notice { align-self: center; font-size: 12.5px; color: var(--muted); background: var(--panel); border: 1px solid var(--line); padding: 3px 12px; border-radius: 999px; }
  .notice.error { color: #fecaca; border-color: #7f1d1d; background: #2a1215; }
  form { display: flex; gap: 10px; padding: 14px 20px; border-top: 1px solid var(--line); }
  input { flex: 1; background: var(--panel); color: var(--text); border: 1px solid var(--line); border-radius: 10px; padding: 11px 14px; font: inherit; outline: none; }
  input:focus { border-color: var(--accent); box-shadow: 0 0 0 3px rgba(99,102,241,.25); }
  button { background: var(--accent); color: white; border: 0; border-radius: 10px; padding: 0 18px; font: inherit; font-weight: 600; cursor: pointer; }
  button:disabled { opacity: .45; cursor: default; }
  .join { position: fixed; inset: 0; display: grid; place-items: center; background: rgba(2,6,23,.75); backdrop-filter: blur(4px); }
  .join .card { background: var(--panel); border: 1px solid var(--line); border-radius: 16px; padding: 26px; width: min(380px, 92vw); }
  .join h2 { margin: 0 0 6px; } .join p { margin: 0 0 16px; color: var(--muted); font-size: 14px; }
  .join form { padding: 0; border: 0; }
  .join .err { color: #fca5a5; font-size: 13px; min-height: 18px; margin-top: 8px; }
  .hidden { display: none; }
  @media (max-width: 700px) { main { grid-template-columns: 1fr; } aside { display: none; } }
</style>
</head>
<body>
<div class="app">
  <header>
    <div class="logo">D</div>
    <div><h1>DispatchWebSocket Chat</h1><div class="sub" id="who">Not joined</div></div>
    <div class="state" id="state"><span class="dot"></span><span id="stateText">Connecting…</span></div>
  </header>
  <main>
    <aside><h2>Online — <span id="count">0</span></h2><div id="users"></div></aside>
    <section>
      <div id="log" aria-live="polite"></div>
      <form id="send"><input id="text" maxlength="1000" placeholder="Write a message…" autocomplete="off" disabled><button id="sendButton" disabled>Send</button></form>
    </section>
  </main>
</div>
<div class="join" id="join">
  <div class="card">
    <h2>Join the chat</h2><p>Pick a nickname: 1–24 letters, digits, spaces, _ or -.</p>
    <form id="joinForm"><input id="name" maxlength="24" placeholder="Your nickname" autocomplete="off" autofocus><button>Join</button></form>
    <div class="err" id="joinError"></div>
  </div>
</div>
<script>
(() => {
  const $ = id => document.getElementById(id);
  const el = (tag, className, text) => { const e = document.createElement(tag); e.className = className; if (text !== undefined) e.textContent = text; return e; };
  const colors = ["#6366f1", "#ec4899", "#14b8a6", "#f59e0b", "#8b5cf6", "#06b6d4", "#84cc16", "#f43f5e"];
  const color = name => colors[[...name].reduce((h, c) => (h * 33 ^ c.codePointAt(0)) >>> 0, 5381) % colors.length];
  const clock = t => new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });

  let socket = null, retries = 0;
  let me = null;  // our nickname once the server welcomed us
  let wanted = new URLSearchParams(location.search).get("name") || localStorage.getItem("chat-name");
  let last = null;  // the previous message: a sender's consecutive messages are grouped

  // ---- Rendering ----
  function avatar(name) { const a = el("div", "avatar", [...name][0].toUpperCase()); a.style.background = color(name); return a; }
  function append(node) { const log = $("log"); log.querySelector(".empty")?.remove(); log.append(node); log.scrollTop = log.scrollHeight; }
  function notice(text, isError) { append(el("div", isError ? "notice error" : "notice", text)); }
  function message(m) {
    const grouped = last && last.from === m.from && m.time - last.time < 120000 && $("log").lastElementChild?.classList.contains("msg");
    last = m;
    const row = el("div", "msg" + (m.from === me ? " mine" : "") + (grouped ? " cont" : ""));
    const bubble = el("div", "bubble");
    bubble.append(el("div", "meta", (m.from === me ? "You" : m.from) + " · " + clock(m.time)), el("div", "text", m.text));
    row.append(avatar(m.from), bubble);
    append(row);
  }
  function showUsers(list) {
    $("count").textContent = list.length;
    $("users").classList.remove("stale");
    $("users").replaceChildren(...list.map(name => {
      const row = el("div", name === me ? "user me" : "user");
      row.append(avatar(name), el("span", "", name === me ? name + " (you)" : name));
      return row;
    }));
  }
  function showJoined(ok) {
    $("join").classList.toggle("hidden", ok);
    $("text").disabled = $("sendButton").disabled = !ok;
    $("who").textContent = ok ? "Signed in as " + me : "Not joined";
    if (ok) $("text").focus();
  }
  function showState(kind, text) { $("state").className = "state " + kind; $("stateText").textContent = text; }

  // ---- The connection ----
  function send(object) {
    if (socket?.readyState !== WebSocket.OPEN) return false;
    socket.send(JSON.stringify(object));
    return true;
  }

  function connect() {
    showState("", retries ? "Reconnecting…" : "Connecting…");
    socket = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/chat", "chat");
    socket.onopen = () => {
      retries = 0;
      showState("open", "Connected");
      if (wanted) send({ type: "join", name: wanted });
    };
    socket.onmessage = event => {
      const m = JSON.parse(event.data);
      switch (m.type) {
        case "welcome":
          me = m.name;
          localStorage.setItem("chat-name", me);
          $("log").replaceChildren();
          last = null;
          m.history.forEach(message);
          showUsers(m.users);
          showJoined(true);
          notice("Welcome, " + me + "!");
          if (!m.history.length) $("log").append(el("div", "empty", "No messages yet. Say hello!"));
          break;
        case "message": message(m); break;
        case "joined": showUsers(m.users); if (m.name !== me) notice(m.name + " joined"); break;
        case "left": showUsers(m.users); notice(m.name + " left"); break;
        case "error":
          if (me) { notice(m.message, true); break; }
          $("joinError").textContent = m.message;  // the nickname was refused
          wanted = null;
          showJoined(false);
          break;
      }
    };
    socket.onclose = event => {
      // Try again after 1, 2, 4… up to 30 seconds (with jitter, so that clients do not all come back at once).
      const delay = Math.min(30000, 1000 * 2 ** retries++) * (0.75 + Math.random() / 2);
      showState("closed", (event.reason || "Disconnected") + " — retrying in " + Math.round(delay / 1000) + " s");
      $("text").disabled = $("sendButton").disabled = true;
      $("users").classList.add("stale");
      if (me) wanted = me;  // rejoin under the same name
      me = null;
      setTimeout(connect, delay);
    };
  }

  $("joinForm").onsubmit = event => {
    event.preventDefault();
    if (me) return;
    wanted = $("name").value.trim();
    $("joinError").textContent = "";
    send({ type: "join", name: wanted });
  };
  $("send").onsubmit = event => {
    event.preventDefault();
    const text = $("text").value.trim();
    if (text && send({ type: "message", text })) $("text").value = "";
  };
  $("name").value = wanted || "";
  showJoined(false);
  connect();
})();
</script>
</body>
</html>
"""#
}
