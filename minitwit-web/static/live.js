// Live timelines (CONTRACT.md §3.6): on the first page of a timeline, listens to the
// page's own address as a stream of server-sent events and gathers the new entries in a
// bar at the top of the list, "1 new message" / "N new messages", a button announced by
// an ARIA live region. Activating it inserts the entries, rendered by the server exactly
// as the page's own. Without this script (or without EventSource) nothing changes.
(function () {
  "use strict";

  var MAX_DELAY = 60000;

  function start() {
    var list = document.querySelector("ul.messages");
    if (!list || !window.EventSource || /(^|[?&])before=/.test(location.search.slice(1))) {
      return;
    }
    var bar = document.createElement("div");
    bar.className = "live";
    bar.setAttribute("role", "status");
    bar.setAttribute("aria-live", "polite");
    list.parentNode.insertBefore(bar, list);

    var pending = [];
    var last = null;
    var source = null;
    var delay = 2000;
    var stopped = false;
    var button = document.createElement("button");
    button.type = "button";
    button.className = "link live-new";
    button.addEventListener("click", activate);

    function label() {
      if (pending.reload) {
        return "New messages: reload the page";
      }
      return pending.length === 1 ? "1 new message" : pending.length + " new messages";
    }

    function show() {
      if (!pending.length && !pending.reload) {
        if (button.parentNode) {
          bar.removeChild(button);
        }
        return;
      }
      button.textContent = label();
      if (!button.parentNode) {
        bar.appendChild(button);
      }
    }

    function activate() {
      if (pending.reload) {
        location.reload();
        return;
      }
      var first = null;
      var placeholder = list.querySelector("li > em");
      if (placeholder && list.children.length === 1) {
        list.removeChild(placeholder.parentNode);
      }
      for (var i = 0; i < pending.length; i++) {
        var holder = document.createElement("template");
        holder.innerHTML = pending[i].html.trim();
        var entry = holder.content.firstElementChild;
        if (!entry) {
          continue;
        }
        if (window.minitwitLocalTimes) {
          window.minitwitLocalTimes(entry);
        }
        list.insertBefore(entry, list.firstElementChild);
        first = entry;
      }
      pending = [];
      show();
      var link = first && first.querySelector("a");
      if (link) {
        link.focus();
      }
    }

    function connect() {
      var url = location.pathname + (last ? "?after=" + encodeURIComponent(last) : "");
      source = new EventSource(url);
      source.addEventListener("open", function () {
        delay = 2000;
        bar.setAttribute("data-state", "open");
      });
      source.addEventListener("entry", function (event) {
        last = event.lastEventId || last;
        pending.push({ id: event.lastEventId, html: JSON.parse(event.data) });
        show();
      });
      source.addEventListener("withdraw", function (event) {
        var ids = event.data.split(" ");
        pending = pending.filter(function (entry) {
          return ids.indexOf(entry.id) === -1;
        });
        show();
      });
      source.addEventListener("reload", function () {
        pending.reload = true;
        show();
      });
      source.addEventListener("signedout", function () {
        stopped = true;
        bar.setAttribute("data-state", "closed");
        source.close();
        pending = [];
        show();
      });
      source.addEventListener("error", function () {
        // EventSource reconnects by itself after a stream ends; a refused one (429,
        // 503) it gives up on, so try again later, from the last entry seen.
        if (!stopped && source.readyState === EventSource.CLOSED) {
          setTimeout(connect, delay);
          delay = Math.min(delay * 2, MAX_DELAY);
        }
      });
    }

    connect();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
