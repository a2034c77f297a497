/*
 * omnilink live-chat widget. One tag, no build step:
 *   <script src="https://help.example/channels/livechat/widget.js" data-site="shop" defer></script>
 * Optional: data-identity="ann@example.com" data-identity-hash="<hex HMAC-SHA256 from your server>"
 *           data-name="Ann" data-open="true"
 * Security: every message text is put in the page with textContent, never as HTML.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.__omnilinkLivechat) { return; }
  window.__omnilinkLivechat = true;

  var site = script.getAttribute("data-site") || "";
  var base = script.src.replace(/\/widget\.js(\?.*)?$/, "");
  var wsBase = base.replace(/^http/, "ws");
  var storeKey = "omnilink-livechat:" + site;
  var saved = load();
  var ws = null;
  var connected = false;
  var attempts = 0;
  var heartbeat = 25;
  var pingTimer = null;
  var reconnectTimer = null;
  var typingTimer = null;
  var agentTypingTimer = null;
  var readTimer = null;
  var typingSent = false;
  var agentsAvailable = true;
  var maxText = 4000;
  var polling = false;
  var pollTimer = null;
  var shownKeys = {};
  var seq = 0;

  function load() {
    try {
      var raw = window.localStorage.getItem(storeKey);
      var value = raw ? JSON.parse(raw) : {};
      value.pending = value.pending || [];
      return value;
    } catch (e) {
      return { pending: [] };
    }
  }
  function save() {
    try { window.localStorage.setItem(storeKey, JSON.stringify(saved)); } catch (e) { /* private mode */ }
  }
  function newClientId() {
    var rand = Math.random().toString(36).slice(2, 10);
    seq += 1;
    return "w" + Date.now().toString(36) + rand + seq;
  }

  /* ------------------------------------------------------------------ DOM */

  var host = document.createElement("div");
  host.setAttribute("data-omnilink-livechat", site);
  var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  var style = el("style");
  style.textContent = [
    ":host{all:initial}",
    "*{box-sizing:border-box;font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;font-size:15px}",
    ".launcher{position:fixed;right:16px;bottom:16px;z-index:2147483000;border:0;border-radius:24px;",
    "padding:12px 18px;background:#1d4ed8;color:#fff;cursor:pointer;box-shadow:0 2px 8px rgba(0,0,0,.25)}",
    ".launcher:focus-visible,button:focus-visible,textarea:focus-visible,input:focus-visible{outline:3px solid #f59e0b;outline-offset:2px}",
    ".panel{position:fixed;right:16px;bottom:72px;z-index:2147483000;width:min(380px,calc(100vw - 16px));",
    "height:min(560px,calc(100vh - 96px));display:flex;flex-direction:column;background:#fff;color:#111;",
    "border-radius:12px;box-shadow:0 6px 24px rgba(0,0,0,.3);overflow:hidden}",
    ".panel[hidden]{display:none}",
    "@media (max-width:480px){.panel{right:0;bottom:0;width:100vw;height:100vh;border-radius:0}}",
    "header{display:flex;align-items:center;gap:8px;padding:10px 12px;background:#1d4ed8;color:#fff}",
    "header h2{flex:1;margin:0;font-size:16px}",
    ".state{font-size:12px;opacity:.9}",
    ".close{background:transparent;border:0;color:#fff;font-size:20px;cursor:pointer;padding:2px 8px}",
    ".log{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:8px;margin:0;list-style:none}",
    ".msg{max-width:85%;padding:8px 10px;border-radius:10px;white-space:pre-wrap;word-wrap:break-word}",
    ".msg.visitor{align-self:flex-end;background:#dbeafe}",
    ".msg.agent{align-self:flex-start;background:#f3f4f6}",
    ".meta{display:block;font-size:11px;color:#4b5563;margin-top:2px}",
    ".msg a{color:#1d4ed8}",
    ".typing{min-height:20px;padding:0 12px;font-size:13px;color:#4b5563}",
    "form.compose{display:flex;gap:6px;padding:8px;border-top:1px solid #e5e7eb;align-items:flex-end}",
    "textarea{flex:1;resize:none;min-height:40px;max-height:120px;padding:8px;border:1px solid #9ca3af;border-radius:8px}",
    "button.send,button.submit{border:0;border-radius:8px;padding:10px 14px;background:#1d4ed8;color:#fff;cursor:pointer}",
    ".attach{border:1px solid #9ca3af;border-radius:8px;padding:9px 10px;cursor:pointer;background:#fff}",
    ".visually-hidden{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}",
    "form.offline{padding:10px 12px;border-top:1px solid #e5e7eb;display:flex;flex-direction:column;gap:6px}",
    "form.offline[hidden]{display:none}",
    "form.offline input{padding:8px;border:1px solid #9ca3af;border-radius:8px}",
    ".notice{font-size:13px;color:#92400e}",
  ].join("");
  root.appendChild(style);

  var launcher = el("button", { type: "button", class: "launcher", "aria-expanded": "false", "aria-controls": "olc-panel" }, "Chat with us");
  var panel = el("section", { id: "olc-panel", class: "panel", role: "dialog", "aria-modal": "false", "aria-labelledby": "olc-title", hidden: "" });
  var header = el("header");
  var title = el("h2", { id: "olc-title" }, "Chat with us");
  var state = el("span", { class: "state", role: "status", "aria-live": "polite" }, "Connecting…");
  var closeButton = el("button", { type: "button", class: "close", "aria-label": "Close chat" }, "×");
  header.appendChild(title);
  header.appendChild(state);
  header.appendChild(closeButton);
  var log = el("ol", { class: "log", role: "log", "aria-live": "polite", "aria-relevant": "additions", "aria-label": "Conversation", tabindex: "0" });
  var typing = el("div", { class: "typing", "aria-live": "polite" });
  var offline = el("form", { class: "offline", hidden: "", "aria-label": "Continue by email" });
  offline.appendChild(el("p", { class: "notice", id: "olc-offline-note" }, "No agent is available right now. Leave your email address and we will answer there."));
  var emailLabel = el("label", { for: "olc-email" }, "Your email address");
  var emailInput = el("input", { id: "olc-email", type: "email", required: "", autocomplete: "email", "aria-describedby": "olc-offline-note" });
  var offlineText = el("textarea", { id: "olc-offline-text", rows: "2", "aria-label": "Your message (optional)", maxlength: "4000" });
  var offlineSubmit = el("button", { type: "submit", class: "submit" }, "Send by email");
  offline.appendChild(emailLabel);
  offline.appendChild(emailInput);
  offline.appendChild(offlineText);
  offline.appendChild(offlineSubmit);
  var compose = el("form", { class: "compose", "aria-label": "Write a message" });
  var inputLabel = el("label", { for: "olc-input", class: "visually-hidden" }, "Message");
  var input = el("textarea", { id: "olc-input", rows: "1", placeholder: "Write a message…", maxlength: "4000", autocomplete: "off" });
  var fileLabel = el("label", { class: "attach", for: "olc-file", title: "Attach a file" }, "File");
  var fileInput = el("input", { id: "olc-file", type: "file", class: "visually-hidden", accept: "image/png,image/jpeg,image/gif,image/webp,application/pdf,text/plain" });
  var sendButton = el("button", { type: "submit", class: "send" }, "Send");
  compose.appendChild(inputLabel);
  compose.appendChild(input);
  compose.appendChild(fileLabel);
  compose.appendChild(fileInput);
  compose.appendChild(sendButton);
  panel.appendChild(header);
  panel.appendChild(log);
  panel.appendChild(typing);
  panel.appendChild(offline);
  panel.appendChild(compose);
  root.appendChild(launcher);
  root.appendChild(panel);

  function isOpen() { return !panel.hasAttribute("hidden"); }
  function openPanel() {
    panel.removeAttribute("hidden");
    launcher.setAttribute("aria-expanded", "true");
    saved.open = true;
    save();
    input.focus();
    scheduleRead();
  }
  function closePanel() {
    panel.setAttribute("hidden", "");
    launcher.setAttribute("aria-expanded", "false");
    saved.open = false;
    save();
    launcher.focus();
  }
  launcher.addEventListener("click", function () { if (isOpen()) { closePanel(); } else { openPanel(); } });
  closeButton.addEventListener("click", closePanel);
  panel.addEventListener("keydown", function (event) { if (event.key === "Escape") { closePanel(); } });

  function setState(text) { state.textContent = text; }

  /* ------------------------------------------------------------------ messages */

  function stamp(iso) {
    if (!iso) { return ""; }
    var d = new Date(iso);
    return isNaN(d.getTime()) ? "" : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function renderAttachments(item, attachments) {
    (attachments || []).forEach(function (a) {
      var url = String(a.url || "");
      if (!/^https?:\/\//i.test(url) && url.charAt(0) !== "/") { return; }
      var link = el("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, a.filename || "attachment");
      item.appendChild(document.createElement("br"));
      item.appendChild(link);
    });
  }

  function addMessage(frame) {
    var from = frame.from === "visitor" ? "visitor" : "agent";
    var key = frame.part === null || frame.part === undefined ? frame.id : frame.id + ":" + frame.part;
    if (from === "visitor" && frame.client_id) {
      var mine = log.querySelector('[data-client-id="' + cssEscape(frame.client_id) + '"]');
      if (mine) { markSent(mine, frame.id); return; }
    }
    if (shownKeys[key] || (frame.part !== null && frame.part !== undefined && shownKeys[frame.id])) { return; }
    if ((frame.part === null || frame.part === undefined) && log.querySelector('[data-mid="' + cssEscape(frame.id) + '"]')) { return; }
    shownKeys[key] = true;
    var item = el("li", { class: "msg " + from, "data-mid": frame.id });
    if (frame.client_id) { item.setAttribute("data-client-id", frame.client_id); }
    item.setAttribute("data-id", frame.id);
    item.appendChild(el("span", { class: "visually-hidden" }, from === "agent" ? (frame.author || "Agent") + " says: " : "You said: "));
    item.appendChild(el("span", { class: "text" }, frame.text || ""));
    renderAttachments(item, frame.attachments);
    var meta = el("span", { class: "meta" }, stamp(frame.sent_at) + (from === "visitor" ? " · Sent" : ""));
    item.appendChild(meta);
    log.appendChild(item);
    log.scrollTop = log.scrollHeight;
    if (from === "agent") {
      hideAgentTyping();
      if (frame.provider_id) { send({ type: "delivered", provider_id: frame.provider_id }); }
      (frame.provider_ids || []).forEach(function (pid) {
        if (frame.status === "sent") { send({ type: "delivered", provider_id: pid }); }
      });
      scheduleRead();
    }
  }

  function cssEscape(value) {
    return String(value).replace(/["\\]/g, "\\$&");
  }

  function addPending(clientId, text, file) {
    var item = el("li", { class: "msg visitor", "data-client-id": clientId });
    item.appendChild(el("span", { class: "visually-hidden" }, "You said: "));
    item.appendChild(el("span", { class: "text" }, text));
    if (file) { renderAttachments(item, [file]); }
    item.appendChild(el("span", { class: "meta" }, "Sending…"));
    log.appendChild(item);
    log.scrollTop = log.scrollHeight;
    return item;
  }

  function markSent(item, serverId) {
    item.setAttribute("data-id", serverId);
    item.setAttribute("data-mid", serverId);
    shownKeys[serverId] = true;
    var meta = item.querySelector(".meta");
    if (meta && !item.classList.contains("read")) { meta.textContent = "Sent"; }
  }

  function markRead(upToId) {
    var items = log.querySelectorAll(".msg");
    var stop = log.querySelector('[data-id="' + cssEscape(upToId) + '"]');
    for (var i = 0; i < items.length; i++) {
      var item = items[i];
      if (item.classList.contains("visitor") && item.hasAttribute("data-id")) {
        item.classList.add("read");
        var meta = item.querySelector(".meta");
        if (meta) { meta.textContent = "Read"; }
      }
      if (item === stop) { break; }
    }
  }

  function lastAgentId() {
    var items = log.querySelectorAll(".msg.agent");
    return items.length ? items[items.length - 1].getAttribute("data-mid") : null;
  }

  function scheduleRead() {
    if (readTimer) { return; }
    readTimer = window.setTimeout(function () {
      readTimer = null;
      var id = lastAgentId();
      if (id && isOpen() && document.visibilityState !== "hidden" && id !== saved.readId) {
        if (send({ type: "read", id: id })) { saved.readId = id; save(); }
      }
    }, 300);
  }
  document.addEventListener("visibilitychange", scheduleRead);

  function showAgentTyping() {
    typing.textContent = "Agent is typing…";
    if (agentTypingTimer) { window.clearTimeout(agentTypingTimer); }
    agentTypingTimer = window.setTimeout(hideAgentTyping, 15000);
  }
  function hideAgentTyping() {
    typing.textContent = "";
    if (agentTypingTimer) { window.clearTimeout(agentTypingTimer); agentTypingTimer = null; }
  }

  function setAgents(available) {
    agentsAvailable = !!available;
    if (agentsAvailable) { offline.setAttribute("hidden", ""); } else { offline.removeAttribute("hidden"); }
  }

  function notice(text) {
    var item = el("li", { class: "msg agent notice", role: "note" }, text);
    log.appendChild(item);
    log.scrollTop = log.scrollHeight;
  }

  /* ------------------------------------------------------------------ socket */

  function send(frame) {
    if (ws && connected && ws.readyState === 1) {
      ws.send(JSON.stringify(frame));
      return true;
    }
    return false;
  }

  function flushPending() {
    saved.pending.forEach(function (p) {
      if (polling) { httpSend(p); } else { send({ type: "message", client_id: p.client_id, text: p.text, upload: p.upload || null }); }
    });
  }

  function connect() {
    if (!("WebSocket" in window)) { startPolling(); return; }
    setState(attempts ? "Reconnecting…" : "Connecting…");
    try {
      ws = new WebSocket(wsBase + "/ws");
    } catch (e) {
      scheduleReconnect();
      return;
    }
    ws.onopen = function () {
      ws.send(JSON.stringify({
        type: "hello", site: site, token: saved.token || null, session: saved.session || null,
        since: log.querySelector(".msg[data-mid]") ? (saved.lastId || null) : null,
        identity: script.getAttribute("data-identity"), identity_hash: script.getAttribute("data-identity-hash"),
        name: script.getAttribute("data-name"),
      }));
    };
    ws.onmessage = function (event) {
      var frame;
      try { frame = JSON.parse(event.data); } catch (e) { return; }
      handle(frame);
    };
    ws.onclose = function (event) {
      connected = false;
      if (pingTimer) { window.clearInterval(pingTimer); pingTimer = null; }
      if (event.code === 4401) {
        saved = { pending: saved.pending };
        save();
      }
      if (event.code === 4404) { setState("Chat unavailable"); return; }
      scheduleReconnect();
    };
    ws.onerror = function () { /* onclose follows */ };
  }

  function scheduleReconnect() {
    attempts += 1;
    setState("Reconnecting…");
    if (attempts >= 6 && !polling) { startPolling(); }
    var delay = Math.min(15000, 500 * Math.pow(2, Math.min(attempts, 5))) * (0.75 + Math.random() / 2);
    if (reconnectTimer) { window.clearTimeout(reconnectTimer); }
    reconnectTimer = window.setTimeout(connect, delay);
  }

  function handle(frame) {
    switch (frame.type) {
      case "welcome":
        connected = true;
        attempts = 0;
        stopPolling();
        saved.token = frame.token;
        saved.session = frame.session;
        save();
        heartbeat = frame.heartbeat || 25;
        maxText = frame.max_text || maxText;
        if (frame.title) { title.textContent = frame.title; launcher.textContent = frame.title; }
        setAgents(frame.agents_available);
        setState("Online");
        if (pingTimer) { window.clearInterval(pingTimer); }
        pingTimer = window.setInterval(function () { send({ type: "ping" }); }, heartbeat * 1000);
        flushPending();
        break;
      case "history":
        (frame.messages || []).forEach(function (m) { addMessage(m); remember(m.id); });
        break;
      case "message":
        addMessage(frame);
        remember(frame.id);
        break;
      case "ack":
        ackPending(frame.client_id, frame.id);
        remember(frame.id);
        break;
      case "typing":
        if (frame.from === "agent") { if (frame.on) { showAgentTyping(); } else { hideAgentTyping(); } }
        break;
      case "read":
        if (frame.from === "agent") { markRead(frame.id); }
        break;
      case "agents":
        setAgents(frame.available);
        break;
      case "pong":
        setAgents(frame.agents_available);
        break;
      case "session_closed":
        notice("This chat has ended. Write again to start a new one.");
        saved.session = null;
        save();
        break;
      case "offline_email_ok":
        notice("Thanks! We will answer at " + frame.email + ".");
        offline.setAttribute("hidden", "");
        break;
      case "error":
        handleError(frame);
        break;
      default:
        break;
    }
  }

  function remember(id) {
    if (id) { saved.lastId = id; save(); }
  }

  function ackPending(clientId, serverId) {
    saved.pending = saved.pending.filter(function (p) { return p.client_id !== clientId; });
    save();
    var item = log.querySelector('[data-client-id="' + cssEscape(clientId) + '"]');
    if (item) { markSent(item, serverId); }
  }

  function handleError(frame) {
    if (frame.client_id) {
      var pending = saved.pending.filter(function (p) { return p.client_id === frame.client_id; })[0];
      if (frame.code === "rate_limited" && pending) {
        window.setTimeout(function () { send({ type: "message", client_id: pending.client_id, text: pending.text, upload: pending.upload || null }); },
          Math.ceil((frame.retry_after || 1) * 1000));
        return;
      }
      saved.pending = saved.pending.filter(function (p) { return p.client_id !== frame.client_id; });
      save();
      var item = log.querySelector('[data-client-id="' + cssEscape(frame.client_id) + '"]');
      if (item) {
        var meta = item.querySelector(".meta");
        if (meta) { meta.textContent = "Not sent: " + (frame.detail || frame.code); }
      }
      return;
    }
    if (frame.code === "bad_email") { notice("That email address does not look right."); }
  }

  /* ------------------------------------------------------------------ HTTP fallback */

  function api(method, path, body) {
    var headers = { "content-type": "application/json" };
    if (saved.token) { headers.authorization = "Bearer " + saved.token; }
    return window.fetch(base + path, { method: method, headers: headers, body: body ? JSON.stringify(body) : undefined })
      .then(function (r) { return r.json().then(function (j) { return { status: r.status, body: j }; }); });
  }

  function startPolling() {
    if (polling) { return; }
    polling = true;
    setState("Online (slow connection)");
    api("POST", "/api/session", { site: site, token: saved.token || null, session: saved.session || null }).then(function (r) {
      if (r.status !== 200) { return; }
      saved.token = r.body.token; saved.session = r.body.session; save();
      setAgents(r.body.agents_available);
      flushPending();
      poll();
    }).catch(function () { /* retried by the socket loop */ });
  }

  function stopPolling() {
    polling = false;
    if (pollTimer) { window.clearTimeout(pollTimer); pollTimer = null; }
  }

  function poll() {
    if (!polling) { return; }
    var since = saved.lastId ? "&since=" + encodeURIComponent(saved.lastId) : "";
    api("GET", "/api/messages?session=" + encodeURIComponent(saved.session || "") + since).then(function (r) {
      if (r.status === 200) { handle({ type: "history", messages: r.body.messages }); }
    }).catch(function () {}).then(function () { pollTimer = window.setTimeout(poll, 4000); });
  }

  function httpSend(p) {
    api("POST", "/api/messages", { session: saved.session, client_id: p.client_id, text: p.text, upload: p.upload || null })
      .then(function (r) {
        if (r.status === 200) { ackPending(r.body.client_id, r.body.id); remember(r.body.id); }
        else { handleError({ type: "error", client_id: p.client_id, code: r.body.error, detail: r.body.detail }); }
      }).catch(function () { /* stays pending: retried */ });
  }

  /* ------------------------------------------------------------------ composing */

  function submitText(text, upload, file) {
    var clientId = newClientId();
    var p = { client_id: clientId, text: text, upload: upload || null, file: file || null };
    saved.pending.push(p);
    save();
    addPending(clientId, text, p.file);
    if (polling) { httpSend(p); } else { send({ type: "message", client_id: clientId, text: text, upload: p.upload }); }
  }

  compose.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value;
    if (!text.trim()) { return; }
    if (text.length > maxText) { notice("Messages are at most " + maxText + " characters."); return; }
    input.value = "";
    stopTyping();
    submitText(text, null);
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      compose.requestSubmit ? compose.requestSubmit() : compose.dispatchEvent(new Event("submit", { cancelable: true }));
    }
  });
  input.addEventListener("input", function () {
    if (!typingSent && input.value) { typingSent = send({ type: "typing", on: true }); }
    if (typingTimer) { window.clearTimeout(typingTimer); }
    typingTimer = window.setTimeout(stopTyping, 3000);
  });
  function stopTyping() {
    if (typingTimer) { window.clearTimeout(typingTimer); typingTimer = null; }
    if (typingSent) { send({ type: "typing", on: false }); typingSent = false; }
  }

  fileInput.addEventListener("change", function () {
    var file = fileInput.files && fileInput.files[0];
    fileInput.value = "";
    if (!file || !saved.token) { return; }
    window.fetch(base + "/api/uploads?filename=" + encodeURIComponent(file.name), {
      method: "POST",
      headers: { authorization: "Bearer " + saved.token, "content-type": file.type || "application/octet-stream" },
      body: file,
    }).then(function (r) { return r.json().then(function (j) { return { status: r.status, body: j }; }); })
      .then(function (r) {
        if (r.status === 201) { submitText("", r.body.upload, { url: r.body.url, filename: r.body.filename }); }
        else { notice("The file was not sent: " + (r.body.detail || r.body.error)); }
      }).catch(function () { notice("The file was not sent."); });
  });

  offline.addEventListener("submit", function (event) {
    event.preventDefault();
    var email = emailInput.value.trim();
    if (!email) { emailInput.focus(); return; }
    var text = offlineText.value;
    var frame = { type: "offline_email", email: email, text: text };
    if (text.trim()) { frame.client_id = newClientId(); addPending(frame.client_id, text); }
    if (!send(frame)) { notice("Not connected; please try again in a moment."); return; }
    offlineText.value = "";
  });

  /* ------------------------------------------------------------------ start */

  function start() {
    document.body.appendChild(host);
    saved.pending.forEach(function (p) { addPending(p.client_id, p.text, p.file); });
    if (saved.open || script.getAttribute("data-open") === "true") { openPanel(); }
    connect();
  }
  if (document.body) { start(); } else { document.addEventListener("DOMContentLoaded", start); }
})();
