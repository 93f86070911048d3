// Ticketing's own script (no inline scripts: the Content-Security-Policy
// allows only files from /static). Counts down to the deadline in every
// <time data-countdown>, from its datetime attribute; without JavaScript
// the deadline itself is shown. It looks for them every second, so pages
// htmx swaps in are counted down too. On a signed-out page it also
// empties htmx's history cache, so Back cannot restore a private page,
// and after a swap it moves focus where a page load would put it.
(function () {
  function tick() {
    // What only the script makes true (a countdown, live updates) is
    // hidden in the page and shown here.
    document.querySelectorAll("[data-needs-js][hidden]").forEach(function (el) { el.hidden = false; });
    document.querySelectorAll("time[data-countdown]").forEach(function (el) {
      var left = Math.max(0, Math.round((Date.parse(el.getAttribute("datetime")) - Date.now()) / 1000));
      var m = Math.floor(left / 60), s = left % 60;
      el.textContent = left > 0 ? m + ":" + (s < 10 ? "0" : "") + s + " left" : "time is up";
    });
  }
  document.addEventListener("DOMContentLoaded", tick);
  document.addEventListener("htmx:load", tick);
  setInterval(tick, 1000);

  // Signed out: nothing private may come back from htmx's history cache
  // (the layout marks signed-out pages).
  function forgetHistory() {
    if (document.querySelector("[data-signed-out]")) {
      try { localStorage.removeItem("htmx-history-cache"); } catch (e) {}
    }
  }
  document.addEventListener("DOMContentLoaded", forgetHistory);
  document.addEventListener("htmx:afterSettle", forgetHistory);

  // Times come in UTC (the server's format); here they are shown in the
  // visitor's own zone.
  var formats = {
    datetime: { weekday: "short", day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit", timeZoneName: "short" },
    clock: { hour: "2-digit", minute: "2-digit", timeZoneName: "short" }
  };
  function localTimes() {
    document.querySelectorAll("time[data-local]:not([data-localized])").forEach(function (el) {
      var f = formats[el.getAttribute("data-local")], t = Date.parse(el.getAttribute("datetime"));
      if (!f || isNaN(t)) return;
      el.textContent = new Intl.DateTimeFormat(undefined, f).format(t);
      el.title = el.getAttribute("datetime");
      el.setAttribute("data-localized", "");
    });
  }
  document.addEventListener("DOMContentLoaded", localTimes);
  document.addEventListener("htmx:load", localTimes);

  // Focus follows what htmx swapped in, as a page load would place it: a
  // refused form, its first invalid field; a new page (boosted
  // navigation), its heading. Live updates (no request) move nothing.
  document.addEventListener("htmx:afterSettle", function (e) {
    var d = e.detail || {};
    if (!d.xhr || !d.target) return;
    var invalid = d.target.querySelector("[aria-invalid=true]");
    if (invalid) { invalid.focus(); return; }
    if (d.boosted || d.target === document.body) {
      var h = document.querySelector("main h1");
      if (h) { h.setAttribute("tabindex", "-1"); h.focus({ preventScroll: true }); }
    }
  });
})();
