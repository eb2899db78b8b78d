// Herald web chat: one socket.io connection bound to the signed customer token.
(function () {
  "use strict";
  const config = window.HERALD || {};
  const messages = document.getElementById("messages");
  const typing = document.getElementById("typing");
  const statusEl = document.getElementById("status");
  const form = document.getElementById("composer");
  const input = document.getElementById("input");
  const picker = document.getElementById("customer");
  const help = document.getElementById("customer-help");
  let socket = null;
  let outbox = [];  // messages typed while offline, sent on reconnect

  function anonymousId() {
    let id = localStorage.getItem("herald.anonymousId");
    if (!id) {
      id = Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
      localStorage.setItem("herald.anonymousId", id);
    }
    return id;
  }

  function scrollDown() { messages.scrollTop = messages.scrollHeight; }

  function addMessage(who, text) {
    const li = document.createElement("li");
    li.className = who;
    li.textContent = text;
    messages.appendChild(li);
    scrollDown();
    return li;
  }

  function addQuickReplies(li, replies) {
    const box = document.createElement("div");
    box.className = "quick-replies";
    for (const reply of replies) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = reply.title;
      button.addEventListener("click", () => {
        box.remove();
        send(reply.payload, reply.title);
      });
      box.appendChild(button);
    }
    li.appendChild(box);
  }

  function showBotMessage(message) {
    typing.hidden = true;
    if (message.text) {
      const li = addMessage("bot", message.text);
      if (message.quick_replies && message.quick_replies.length) addQuickReplies(li, message.quick_replies);
    }
    if (message.image) {
      const li = addMessage("bot", "");
      const img = document.createElement("img");
      img.src = message.image; img.alt = ""; img.style.maxWidth = "100%";
      li.appendChild(img);
    }
  }

  function send(payload, shown) {
    addMessage("user", shown || payload);
    if (socket && socket.connected) {
      socket.emit("user_uttered", { message: payload });
      typing.hidden = false;
    } else {
      outbox.push(payload);
    }
  }

  function connect(token) {
    if (socket) socket.disconnect();
    messages.innerHTML = "";
    socket = io(config.rasaUrl, {
      path: "/socket.io",
      transports: ["websocket", "polling"],
      auth: { token: token || null, anonymous_id: anonymousId() },
      reconnection: true,
    });
    socket.on("connect", () => {
      statusEl.textContent = "online";
      statusEl.classList.remove("offline");
      const queued = outbox; outbox = [];
      for (const payload of queued) socket.emit("user_uttered", { message: payload });
    });
    socket.on("disconnect", () => {
      statusEl.textContent = "offline — reconnecting…";
      statusEl.classList.add("offline");
    });
    socket.on("session_confirm", (session) => {
      help.textContent = session.verified ? "verified customer" : "not signed in";
    });
    socket.on("bot_uttered", showBotMessage);
  }

  async function loadCustomers() {
    try {
      const reply = await fetch("/demo/customers");
      if (!reply.ok) return;
      for (const c of await reply.json()) {
        const option = document.createElement("option");
        option.value = c.id;
        const order = c.latest_order ? ` — order ${c.latest_order} (${c.latest_order_status.replace(/_/g, " ")})` : "";
        option.textContent = `${c.name} [${c.channels.join(", ")}]${order}`;
        picker.appendChild(option);
      }
      const saved = localStorage.getItem("herald.demoCustomer");
      if (saved) picker.value = saved;
    } catch (e) { /* the page still works for anonymous visitors */ }
  }

  async function pickCustomer() {
    const id = picker.value;
    localStorage.setItem("herald.demoCustomer", id);
    if (!id) { connect(null); return; }
    const reply = await fetch("/demo/token", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ customer_id: Number(id) }),
    });
    connect(reply.ok ? (await reply.json()).token : null);
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    send(text);
  });
  picker.addEventListener("change", pickCustomer);
  loadCustomers().then(pickCustomer);
})();
