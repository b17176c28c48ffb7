// The operations pages' little JavaScript: browser notifications (opt-in), the list's bulk
// selection, the history's appended rows, and keeping a log reader's place. No request is
// made from here except what a person asks for (the permission prompt); the one stream is
// htmx's.
(function () {
  "use strict";

  function swappedId(event) {
    var target = (event.detail && event.detail.target) || event.target;
    return target && target.id;
  }

  // --- notifications ------------------------------------------------------------------
  // Asked for on a click, never on load. The stream swaps #notify when a task this person
  // may act on starts waiting for input or fails; we show it while the tab is hidden.
  var KEY = "taskstream.notify";
  var notified = new Set();

  function supported() { return "Notification" in window; }
  function enabled() {
    return supported() && Notification.permission === "granted" && localStorage.getItem(KEY) === "on";
  }
  function showToggle() {
    var button = document.getElementById("notify-toggle");
    if (!button || !supported()) return;
    button.hidden = false;
    var on = enabled();
    button.textContent = on ? "Notifications on" : (Notification.permission === "denied" ? "Notifications blocked" : "Notify me");
    button.setAttribute("aria-pressed", on ? "true" : "false");
    button.title = on
      ? "You are told when a task of yours waits for you or fails while this tab is hidden. Click to stop."
      : "Be told when a task of yours waits for you or fails while this tab is hidden.";
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("#notify-toggle");
    if (!button) return;
    if (enabled()) {
      localStorage.setItem(KEY, "off");
      showToggle();
      return;
    }
    Notification.requestPermission().then(function (permission) {
      if (permission === "granted") localStorage.setItem(KEY, "on");
      showToggle();
    });
  });
  function maybeNotify() {
    var el = document.getElementById("notify");
    if (!el || !el.dataset.eventId || notified.has(el.dataset.eventId)) return;
    notified.add(el.dataset.eventId);
    if (document.visibilityState !== "hidden" || !enabled()) return;
    var notice = new Notification(el.dataset.title || "taskstream", {
      body: el.dataset.body || "",
      tag: "taskstream-" + el.dataset.eventId,
    });
    var url = el.dataset.url;
    notice.onclick = function () {
      window.focus();
      if (url) window.location.assign(url);
    };
  }

  // --- bulk selection on the task list ------------------------------------------------
  // The rows are replaced by the stream as tasks change; the selection lives here and is
  // put back on every swap.
  var selected = new Set();
  var allMatching = false;

  function rowBoxes() { return Array.prototype.slice.call(document.querySelectorAll("input.select-row")); }
  function matchingCount() {
    var pager = document.getElementById("pager");
    if (!pager) return { n: 0, text: "0" };
    var n = parseInt(pager.dataset.count || "0", 10);
    var text = n.toLocaleString("en-US") + (pager.dataset.capped === "1" ? "+" : "");
    return { n: n, text: text };
  }
  function refreshSelection() {
    var form = document.getElementById("bulk-form");
    if (!form) return;
    var boxes = rowBoxes();
    boxes.forEach(function (box) { box.checked = allMatching || selected.has(box.value); });
    var page = document.getElementById("select-page");
    var allOnPage = boxes.length > 0 && boxes.every(function (box) { return box.checked; });
    if (page) page.checked = allOnPage;
    var matching = matchingCount();
    var count = document.getElementById("bulk-count");
    var more = document.getElementById("bulk-select-all");
    var n = allMatching ? matching.n : selected.size;
    if (count) {
      count.textContent = allMatching
        ? "All " + matching.text + " tasks matching this filter are selected"
        : (n ? n + " selected" : "No task selected");
    }
    if (more) {
      if (allMatching) {
        more.hidden = false;
        more.textContent = "Clear the selection";
      } else if (allOnPage && matching.n > boxes.length) {
        more.hidden = false;
        more.textContent = "Select all " + matching.text + " tasks matching this filter";
      } else {
        more.hidden = true;
      }
    }
    document.getElementById("bulk-all").value = allMatching ? "1" : "0";
    ["bulk-cancel", "bulk-retry"].forEach(function (id) {
      var button = document.getElementById(id);
      if (button) button.disabled = n === 0;
    });
  }
  function clearSelection() {
    selected.clear();
    allMatching = false;
    refreshSelection();
  }
  document.addEventListener("change", function (event) {
    var box = event.target;
    if (box.matches && box.matches("input.select-row")) {
      if (allMatching) {  // leaving "all matching": keep the page's rows but this one
        allMatching = false;
        rowBoxes().forEach(function (b) { selected.add(b.value); });
      }
      if (box.checked) selected.add(box.value); else selected.delete(box.value);
      refreshSelection();
    } else if (box.id === "select-page") {
      allMatching = false;
      rowBoxes().forEach(function (b) {
        if (box.checked) selected.add(b.value); else selected.delete(b.value);
      });
      refreshSelection();
    }
  });
  document.addEventListener("click", function (event) {
    var target = event.target;
    if (target.id === "bulk-select-all") {
      if (allMatching) clearSelection();
      else { allMatching = true; refreshSelection(); }
    } else if (target.matches && target.matches("[data-bulk-dismiss]")) {
      var panel = document.getElementById("bulk-panel");
      if (panel) {
        var empty = document.createElement("div");
        empty.id = "bulk-panel";
        panel.replaceWith(empty);
      }
    }
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    var panel = document.getElementById("bulk-panel");
    if (panel && panel.dataset.stage === "done" && event.target === panel) clearSelection();
  });
  document.addEventListener("htmx:afterSettle", function () {
    var panel = document.getElementById("bulk-panel");
    if (panel && panel.dataset.stage === "done" && (selected.size || allMatching)) clearSelection();
  });

  // --- the history: rows are appended once each ---------------------------------------
  var HISTORY_MAX_ROWS = 2000;
  function tidyHistory() {
    var body = document.getElementById("history-rows");
    if (!body) return;
    var seen = new Set();
    Array.prototype.slice.call(body.rows).forEach(function (row) {
      if (seen.has(row.id)) row.remove(); else seen.add(row.id);
    });
    while (body.rows.length > HISTORY_MAX_ROWS) body.rows[0].remove();
  }

  // --- the log: a reader who scrolled up keeps their place ----------------------------
  // The log region (the last lines) is replaced as lines arrive. Following, live.js keeps
  // it at the bottom; not following, the line at the top of the view stays where it was.
  // The place is measured once and kept until the reader scrolls (not re-measured on
  // every swap, which would let rounding creep).
  var pinned = null;  // {id, offset, scrollTop}: the reader's top line and where it sat
  var setTop = null;  // the scrollTop we set last (its scroll event is not the reader's)
  function following() {
    var on = document.getElementById("log-follow");
    return !on || on.checked;
  }
  function topLine(box) {
    var top = box.getBoundingClientRect().top;
    var lines = box.querySelectorAll("li[id]");
    for (var i = 0; i < lines.length; i++) {
      var rect = lines[i].getBoundingClientRect();
      if (rect.bottom > top) return { id: lines[i].id, offset: rect.top - top, scrollTop: box.scrollTop };
    }
    return null;
  }
  document.addEventListener("scroll", function (event) {
    var box = event.target;
    if (!box || box.id !== "log-box") return;
    if (setTop !== null && Math.abs(box.scrollTop - setTop) <= 1) return;
    pinned = null;  // the reader moved
    setTop = null;
  }, true);
  document.addEventListener("htmx:oobBeforeSwap", function (event) {
    if (swappedId(event) !== "task-log") return;
    var box = document.getElementById("log-box");
    if (!box || following()) { pinned = null; return; }
    if (!pinned || !document.getElementById(pinned.id)) pinned = topLine(box);
  });
  function restoreLog() {
    var box = document.getElementById("log-box");
    if (!box || !pinned || following()) return;
    var line = document.getElementById(pinned.id);
    if (line) {
      box.scrollTop += line.getBoundingClientRect().top - box.getBoundingClientRect().top - pinned.offset;
    } else {  // the reader's line left the tail: stay at the same height
      box.scrollTop = pinned.scrollTop;
      pinned = null;
    }
    setTop = box.scrollTop;
  }

  document.addEventListener("htmx:oobAfterSwap", function (event) {
    var id = swappedId(event);
    if (id === "notify") maybeNotify();
    else if (id === "history-rows") tidyHistory();
    else if (id === "task-rows" || (id && id.indexOf("task-") === 0) || id === "pager") refreshSelection();
    if (id === "task-log") restoreLog();
  });

  document.addEventListener("DOMContentLoaded", function () {
    showToggle();
    refreshSelection();
    tidyHistory();
  });
})();
