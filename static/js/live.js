// The little htmx cannot do: the connection indicator, resuming from the last event a
// page rendered, closing the stream on pagehide, log follow mode, ticking durations.
// No request is ever made from here: the one stream is htmx's (hx-sse).
(function () {
  "use strict";

  var sources = new Set();
  var lastId = null;
  var failures = 0;
  var TEXT = { connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting…", offline: "Offline" };

  function indicate(state) {
    var el = document.getElementById("connection");
    if (!el || el.dataset.state === state) return;
    el.dataset.state = state;
    var text = el.querySelector(".conn-text");
    if (text) text.textContent = TEXT[state];
  }

  // htmx's SSE extension re-creates a closed EventSource with the URL of the page, whose
  // last_event_id is the render's; resume from the last id the stream gave instead.
  function resumeUrl(url) {
    if (lastId === null) return url;
    var u = new URL(url, window.location.href);
    u.searchParams.set("last_event_id", lastId);
    return u.pathname + u.search;
  }

  function createEventSource(url) {
    var source = new EventSource(resumeUrl(url), { withCredentials: true });
    sources.add(source);
    source.addEventListener("open", function () {
      failures = 0;
      indicate("live");
    });
    source.addEventListener("error", function () {
      failures += 1;
      if (source.readyState === EventSource.CLOSED) sources.delete(source);
      indicate(failures >= 4 || !navigator.onLine ? "offline" : "reconnecting");
    });
    // Resume points: each fragment's id, and the id `end` (or `reset`) carries, which is
    // past the events this page had no fragment for. The first frame's id (`retry:` with
    // `id:`, no data) reaches no script: the browser keeps it for its own reconnections
    // but EventSource exposes no last id and the htmx SSE extension passes on only what
    // it swaps; a connection re-created before any of these falls back to the page's id.
    ["fragment", "end", "reset"].forEach(function (name) {
      source.addEventListener(name, function (event) {
        if (event.lastEventId) lastId = event.lastEventId;
      });
    });
    return source;
  }

  // The extension uses htmx.createEventSource when set (it only fills it in if empty).
  htmx.createEventSource = createEventSource;

  window.addEventListener("pagehide", function () {
    sources.forEach(function (source) { source.close(); });
    sources.clear();
  });
  // Back from the bfcache the stream is closed: load the page afresh.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted && document.getElementById("live")) window.location.reload();
  });
  window.addEventListener("offline", function () { indicate("offline"); });

  // --- actions on the task page ------------------------------------------------------
  // Their forms sit inside regions the stream replaces; a request issued by a form that
  // was replaced meanwhile would have its out-of-band answer looked up in the detached
  // form. So they post through htmx from the stream's element, which is never replaced.
  // Without JavaScript they are plain forms (post, redirect).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var live = document.getElementById("live");
    if (!form.matches || !form.matches("form[data-live-action]") || !live) return;
    event.preventDefault();
    var button = form.querySelector("button[type=submit]");
    if (button) button.disabled = true;
    var values = htmx.values(form);
    // A form with one button per answer: the button pressed is the answer.
    if (event.submitter && event.submitter.name) values[event.submitter.name] = event.submitter.value;
    htmx
      .ajax("POST", form.action, { source: live, values: values, swap: "none" })
      .finally(function () { if (button) button.disabled = false; });
  });

  // --- never let an older state replace a newer one ---------------------------------
  // A region is swapped in by the page's stream (labelled with the id of the event it was
  // rendered for) and by an action's response (labelled X-Events-Seen: the log's end when
  // it rendered). They race: a response rendered before the worker moved on can land
  // after the stream showed the move, and nothing would redraw it again. So each region
  // remembers the newest label it shows, and an older one is not swapped over it.
  var regionSeen = {};
  var swapLabel = null;
  function labelled(value) {
    var n = parseInt(value, 10);
    return isNaN(n) ? null : n;
  }
  document.addEventListener("htmx:sseBeforeMessage", function (event) {
    swapLabel = labelled(event.detail && event.detail.lastEventId);
  });
  document.addEventListener("htmx:sseMessage", function () { swapLabel = null; });
  document.addEventListener("htmx:beforeOnLoad", function (event) {
    var xhr = event.detail && event.detail.xhr;
    swapLabel = xhr ? labelled(xhr.getResponseHeader("X-Events-Seen")) : null;
  });
  document.addEventListener("htmx:afterOnLoad", function () { swapLabel = null; });
  document.addEventListener("htmx:oobBeforeSwap", function (event) {
    var target = event.detail && event.detail.target;
    if (swapLabel === null || !target || !target.id) return;
    if ((regionSeen[target.id] || 0) > swapLabel) {
      event.detail.shouldSwap = false;
      return;
    }
    regionSeen[target.id] = swapLabel;
  });

  // --- log follow mode ---------------------------------------------------------------
  function follow() {
    var box = document.getElementById("log-box");
    var on = document.getElementById("log-follow");
    if (box && on && on.checked) box.scrollTop = box.scrollHeight;
  }
  document.addEventListener("htmx:oobAfterSwap", function (event) {
    var target = (event.detail && event.detail.target) || event.target;
    if (target && target.id === "task-log") follow();
  });
  document.addEventListener("DOMContentLoaded", function () {
    follow();
    var box = document.getElementById("log-box");
    var on = document.getElementById("log-follow");
    if (!box || !on) return;
    on.addEventListener("change", follow);
    // Scrolling up to read stops following; back at the bottom resumes it.
    box.addEventListener("scroll", function () {
      on.checked = box.scrollHeight - box.scrollTop - box.clientHeight < 8;
    });
  });

  // --- running durations: the server renders them (whole seconds so far, from
  // data-since); this only counts on, with no requests and no formatting of its own.
  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-since]").forEach(function (el) {
      var since = Date.parse(el.dataset.since);
      if (!isNaN(since)) {
        el.textContent = String(Math.max(0, Math.floor((now - since) / 1000))) + (el.dataset.suffix || "");
      }
    });
  }
  window.setInterval(tick, 1000);
  // Fragments carry the server's figure of their render time: align them at once.
  document.addEventListener("htmx:oobAfterSwap", tick);
  document.addEventListener("DOMContentLoaded", tick);
})();
