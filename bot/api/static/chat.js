// Herald web chat: one socket.io connection bound to the signed customer token.
// History comes from the app (/webchat/history), so a reload or a reconnect shows the
// whole conversation, including proactive messages that arrived while the page was away.
(function () {
  "use strict";
  const config = window.HERALD || {};
  const $ = (id) => document.getElementById(id);
  const list = $("messages");
  const typing = $("typing");
  const statusEl = $("status");
  const statusText = $("status-text");
  const offline = $("offline");
  const form = $("composer");
  const input = $("input");
  const picker = $("customer");
  const identity = $("identity");
  const TYPING_TIMEOUT_MS = 20000;

  let socket = null;
  let generation = 0;  // which start() is current: picking again abandons the older one
  let token = null;
  let everConnected = false;
  let loadingHistory = false;
  let arrivedWhileLoading = [];
  let typingTimer = null;
  let customers = new Map();

  // --- the conversation's identity --------------------------------------------------------

  function anonymousId() {
    let id = localStorage.getItem("herald.anonymousId");
    if (!id) {
      const bytes = crypto.getRandomValues(new Uint8Array(16));
      id = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
      localStorage.setItem("herald.anonymousId", id);
    }
    return id;
  }

  function conversationKey() {
    return "herald.outbox." + (picker.value || "anon");
  }

  // Messages typed while offline, kept across a reload until they are sent.
  function outbox() {
    try { return JSON.parse(sessionStorage.getItem(conversationKey()) || "[]"); }
    catch (e) { return []; }
  }
  function saveOutbox(items) { sessionStorage.setItem(conversationKey(), JSON.stringify(items)); }

  // --- drawing -------------------------------------------------------------------------------

  function timeLabel(at) {
    const when = at ? new Date(at * 1000) : new Date();
    return when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function scrollDown() { list.scrollTop = list.scrollHeight; }

  function bubble(who, at) {
    const li = document.createElement("li");
    li.className = "msg " + who;
    const body = document.createElement("div");
    body.className = "bubble";
    const meta = document.createElement("span");
    meta.className = "meta";
    meta.textContent = (who === "bot" ? "Herald" : "You") + " · " + timeLabel(at);
    li.append(body, meta);
    list.appendChild(li);
    return { li, body };
  }

  function addUserMessage(text, { queued = false, at = null } = {}) {
    const { li, body } = bubble("user", at);
    body.textContent = text;
    if (queued) {
      li.classList.add("queued");
      li.querySelector(".meta").textContent = "Waiting for connection…";
    }
    scrollDown();
    return li;
  }

  function clearQuickReplies() {
    for (const box of list.querySelectorAll(".quick-replies")) box.remove();
  }

  function addBotMessage(message, { live = false } = {}) {
    const { li, body } = bubble("bot", message.at);
    if (live) li.classList.add("arrived");
    if (message.text) {
      const p = document.createElement("p");
      p.textContent = message.text;
      body.appendChild(p);
    }
    if (message.image) {
      const img = document.createElement("img");
      img.src = message.image;
      img.alt = message.text ? "Image for the message above" : "Image from Herald";
      body.appendChild(img);
    }
    if (message.links && message.links.length) {
      const links = document.createElement("ul");
      links.className = "links";
      for (const link of message.links) {
        const item = document.createElement("li");
        const a = document.createElement("a");
        a.href = link.url; a.textContent = link.title || link.url;
        a.target = "_blank"; a.rel = "noopener noreferrer";
        item.appendChild(a);
        if (link.subtitle) item.append(" — " + link.subtitle);
        links.appendChild(item);
      }
      body.appendChild(links);
    }
    if (message.quick_replies && message.quick_replies.length) {
      clearQuickReplies();
      const box = document.createElement("div");
      box.className = "quick-replies";
      box.setAttribute("role", "group");
      box.setAttribute("aria-label", "Suggested replies");
      for (const reply of message.quick_replies) {
        const button = document.createElement("button");
        button.type = "button";
        button.textContent = reply.title;
        button.addEventListener("click", () => {
          box.remove();
          send(reply.payload, reply.title);
          input.focus();
        });
        box.appendChild(button);
      }
      li.appendChild(box);
    }
    scrollDown();
  }

  function showTyping(on) {
    typing.hidden = !on;
    clearTimeout(typingTimer);
    if (on) {
      typingTimer = setTimeout(() => { typing.hidden = true; }, TYPING_TIMEOUT_MS);
      scrollDown();
    }
  }

  function setStatus(state, text) {
    statusEl.className = "status " + state;
    statusText.textContent = text;
    offline.hidden = state !== "offline";
  }

  // --- history --------------------------------------------------------------------------------

  function authHeaders() {
    return token ? { Authorization: "Bearer " + token } : { "X-Herald-Anonymous-Id": anonymousId() };
  }

  async function loadHistory() {
    loadingHistory = true;
    arrivedWhileLoading = [];
    let messages = null;
    try {
      const reply = await fetch("/webchat/history", { headers: authHeaders(), cache: "no-store" });
      if (reply.ok) messages = (await reply.json()).messages;
    } catch (e) { /* offline: keep what is on screen */ }
    loadingHistory = false;
    if (messages === null) {
      for (const message of arrivedWhileLoading) addBotMessage(message, { live: true });
      return;
    }
    list.replaceChildren();
    const last = messages.length - 1;
    messages.forEach((message, index) => {
      if (message.from === "user") {
        addUserMessage(message.text, { at: message.at });
      } else {
        // Only the newest message's quick replies still make sense to press.
        const shown = index === last ? message : { ...message, quick_replies: [] };
        addBotMessage(shown);
      }
    });
    const recent = new Set(messages.slice(-20).filter((m) => m.from === "bot").map((m) => m.text));
    for (const message of arrivedWhileLoading) {
      if (!recent.has(message.text)) addBotMessage(message, { live: true });
    }
    arrivedWhileLoading = [];
  }

  // --- sending --------------------------------------------------------------------------------

  function send(payload, shown) {
    clearQuickReplies();
    if (socket && socket.connected) {
      addUserMessage(shown || payload);
      socket.emit("user_uttered", { message: payload });
      showTyping(true);
    } else {
      addUserMessage(shown || payload, { queued: true });
      saveOutbox([...outbox(), { payload, shown: shown || payload }]);
    }
  }

  function flushOutbox() {
    const queued = outbox();
    if (!queued.length) return;
    saveOutbox([]);
    for (const li of list.querySelectorAll(".msg.queued")) li.remove();
    for (const item of queued) {
      addUserMessage(item.shown);
      socket.emit("user_uttered", { message: item.payload });
    }
    showTyping(true);
  }

  function showQueued() {
    for (const item of outbox()) addUserMessage(item.shown, { queued: true });
  }

  // --- the connection ---------------------------------------------------------------------------

  function hangUp() {
    if (socket) { socket.removeAllListeners(); socket.io.removeAllListeners(); socket.disconnect(); }
    socket = null;
  }

  async function start(newToken) {
    const mine = ++generation;
    hangUp();
    token = newToken;
    everConnected = false;
    showTyping(false);
    list.replaceChildren();
    setStatus("connecting", "Connecting");
    await loadHistory();
    if (mine !== generation) return;  // the customer picked someone else meanwhile
    showQueued();
    socket = io(config.rasaUrl, {
      path: "/socket.io",
      transports: ["websocket", "polling"],
      auth: { token: token || null, anonymous_id: anonymousId() },
      reconnection: true,
      reconnectionDelay: 500,
      reconnectionDelayMax: 5000,
    });
    socket.on("connect", async () => {
      setStatus("online", "Online");
      if (everConnected) {
        // Back after a drop: catch up on anything said meanwhile (proactive notices too).
        await loadHistory();
        showQueued();
      }
      everConnected = true;
      flushOutbox();
    });
    socket.on("disconnect", () => setStatus("offline", "Offline — reconnecting"));
    socket.io.on("reconnect_attempt", () => setStatus("offline", "Offline — reconnecting"));
    socket.on("session_confirm", (session) => {
      identity.textContent = session.verified ? "signed in" : "not signed in";
    });
    socket.on("bot_uttered", (message) => {
      showTyping(false);
      const shown = { ...message, at: Date.now() / 1000 };
      if (loadingHistory) arrivedWhileLoading.push(shown);
      else addBotMessage(shown, { live: true });
    });
  }

  // --- the demo shop -------------------------------------------------------------------------------

  function describeCustomer(id) {
    const card = $("customer-card");
    const customer = customers.get(id);
    card.hidden = !customer;
    if (!customer) return;
    $("card-order").textContent = customer.latest_order
      ? `#${customer.latest_order} · ${customer.latest_order_status.replace(/_/g, " ")}` : "none";
    $("card-timezone").textContent = customer.timezone;
    $("card-channels").textContent = customer.channels.join(", ");
  }

  async function loadCustomers() {
    try {
      const reply = await fetch("/demo/customers");
      if (!reply.ok) { $("picker-field").hidden = true; return; }
      for (const c of await reply.json()) {
        customers.set(String(c.id), c);
        const option = document.createElement("option");
        option.value = c.id;
        option.textContent = c.name + (c.latest_order ? ` — order #${c.latest_order}` : "");
        picker.appendChild(option);
      }
      const saved = localStorage.getItem("herald.demoCustomer");
      if (saved && customers.has(saved)) picker.value = saved;
    } catch (e) { $("picker-field").hidden = true; }
  }

  async function pickCustomer() {
    const id = picker.value;
    localStorage.setItem("herald.demoCustomer", id);
    describeCustomer(id);
    if (!id) { await start(null); return; }
    let signed = null;
    try {
      const reply = await fetch("/demo/token", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ customer_id: Number(id) }),
      });
      if (reply.ok) signed = (await reply.json()).token;
    } catch (e) { /* chat on as a visitor */ }
    await start(signed);
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    send(text);
  });
  for (const button of document.querySelectorAll("[data-say]")) {
    button.addEventListener("click", () => { send(button.dataset.say); input.focus(); });
  }
  picker.addEventListener("change", pickCustomer);
  // For people debugging in the console (and the browser test): the live connection.
  window.HeraldChat = { get socket() { return socket; } };
  loadCustomers().then(pickCustomer);
})();
