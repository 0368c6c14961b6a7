// Shows every <time datetime="…"> in the reader's own time zone, in the same
// "YYYY-MM-DD @ HH:MM" form the server renders in UTC; the UTC text stays as a tooltip.
// live.js calls window.minitwitLocalTimes(element) for the entries it inserts.
(function () {
  "use strict";

  function pad(n) {
    return (n < 10 ? "0" : "") + n;
  }

  function format(date) {
    return date.getFullYear() + "-" + pad(date.getMonth() + 1) + "-" + pad(date.getDate()) +
      " @ " + pad(date.getHours()) + ":" + pad(date.getMinutes());
  }

  function localizeWithin(root) {
    var times = root.querySelectorAll("time[datetime]");
    for (var i = 0; i < times.length; i++) {
      var el = times[i];
      var date = new Date(el.getAttribute("datetime"));
      if (isNaN(date.getTime())) {
        continue;
      }
      el.title = el.textContent + " UTC";
      el.textContent = format(date);
    }
  }

  function localize() {
    localizeWithin(document);
    document.documentElement.setAttribute("data-local-times", "done");
  }

  window.minitwitLocalTimes = localizeWithin;

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", localize);
  } else {
    localize();
  }
})();
