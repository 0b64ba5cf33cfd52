// The topic page's live view: new messages appear at the top without a reload.
//
// It follows the topic's SSE endpoint with EventSource, which reconnects by
// itself after a network blip and resumes with Last-Event-ID (the first
// connection starts after the newest message shown, since=<its id>). When the
// server refuses the stream (EventSource closes without opening), the page asks
// the stream URL why: a 503 is the WSGI door with every stream slot of its
// worker busy (429: too many streams of this visitor), and then the page polls
// /<topic>/json?poll=1&since=<last id> every few seconds, says so in #status,
// and tries the live stream again now and then. Messages are shown once each,
// by id, whichever way they came. Text goes in with textContent, never as HTML.
(() => {
  "use strict";
  const list = document.getElementById("messages");
  const status = document.getElementById("status");
  if (!list || !status) return;

  const streamUrl = list.dataset.streamUrl;
  const pollUrl = list.dataset.pollUrl;
  const pollMs = 1000 * Number(status.dataset.pollSeconds || 5);
  const liveAgainEvery = 6; // polls between two tries of the live stream
  const errorsBeforeProbe = 3; // a browser that retries a refused stream itself
  const priorities = { 1: "min", 2: "low", 3: "default", 4: "high", 5: "max" };
  const seen = new Set(Array.from(list.querySelectorAll("li[data-id]"), (li) => li.dataset.id));
  let lastId = list.dataset.since === "all" ? "" : list.dataset.since;
  let source = null;
  let errors = 0;
  let pollTimer = null;
  let polls = 0;

  function setState(state, detail) {
    const key = "text" + state.charAt(0).toUpperCase() + state.slice(1);
    status.dataset.state = state;
    status.textContent = (status.dataset[key] || state) + (detail ? " (" + detail + ")" : "");
  }

  function shownTime(unix) {
    return new Date(unix * 1000).toISOString().slice(0, 19).replace("T", " ") + " UTC";
  }

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function render(msg) {
    const item = element("li", "message priority-" + (msg.priority || 3));
    item.dataset.id = msg.id;
    const meta = element("div", "meta");
    const time = element("time", "", shownTime(msg.time));
    time.dateTime = new Date(msg.time * 1000).toISOString().slice(0, 19) + "Z";
    meta.append(time, element("span", "priority", priorities[msg.priority || 3]));
    for (const tag of msg.tags || []) meta.append(element("span", "tag", tag));
    item.append(meta);
    if (msg.title) item.append(element("h3", "title", msg.title));
    item.append(element("p", "text", msg.message));
    return item;
  }

  function show(msg) {
    if (!msg || msg.event !== "message" || seen.has(msg.id)) return;
    seen.add(msg.id);
    lastId = msg.id;
    list.prepend(render(msg));
    const empty = document.getElementById("empty");
    if (empty) empty.hidden = true;
  }

  function since() {
    return "since=" + encodeURIComponent(lastId || "all");
  }

  // --- live: EventSource ---------------------------------------------------------------

  function live() {
    if (source) return;
    const url = streamUrl + "?" + since();
    const es = new EventSource(url);
    source = es;
    errors = 0;
    es.onopen = () => {
      errors = 0;
      stopPolling();
      setState("connected");
    };
    es.onmessage = (event) => show(JSON.parse(event.data));
    es.onerror = () => {
      errors += 1;
      if (es.readyState === EventSource.CONNECTING && errors < errorsBeforeProbe) {
        if (!pollTimer) setState("reconnecting");
        return;
      }
      // Closed (the server answered with an error status), or retried in vain.
      es.close();
      if (source === es) source = null;
      probe(url);
    };
  }

  async function probe(url) {
    const abort = new AbortController();
    let response;
    try {
      response = await fetch(url, { signal: abort.signal, headers: { Accept: "text/event-stream" } });
    } catch (_) {
      if (!pollTimer) setState("reconnecting");
      setTimeout(live, pollMs);
      return;
    }
    if (response.ok) {
      abort.abort(); // a slot came free meanwhile: let EventSource have it
      live();
      return;
    }
    let detail = "HTTP " + response.status;
    try {
      detail = (await response.json()).message || detail;
    } catch (_) {
      // not the JSON error: keep the status
    }
    if (response.status === 503 || response.status === 429) {
      startPolling(detail);
    } else {
      stopPolling();
      setState("refused", detail);
    }
  }

  // --- the fallback: polling -----------------------------------------------------------

  function startPolling(detail) {
    setState("polling", detail);
    if (!pollTimer) pollTimer = setTimeout(poll, 0);
  }

  function stopPolling() {
    if (pollTimer) clearTimeout(pollTimer);
    pollTimer = null;
  }

  async function poll() {
    try {
      const response = await fetch(pollUrl + "?poll=1&" + since(), {
        headers: { Accept: "application/x-ndjson" },
      });
      if (response.status === 401 || response.status === 403) {
        stopPolling();
        setState("refused", "HTTP " + response.status);
        return;
      }
      if (response.ok) {
        for (const line of (await response.text()).split("\n")) {
          if (line.trim()) show(JSON.parse(line));
        }
      }
    } catch (_) {
      // a network blip: the next round asks again from the same id
    }
    if (pollTimer === null) return; // live again meanwhile
    polls += 1;
    if (polls % liveAgainEvery === 0) live(); // its onopen ends the polling
    pollTimer = setTimeout(poll, pollMs);
  }

  live();
})();
