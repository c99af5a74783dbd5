// Medic console: shows times in the browser's time zone (UTC stays in the
// tooltip) and keeps countdowns to deadlines live. No data leaves the page.
(function () {
  "use strict";
  var fmt = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short"
  });

  function duration(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    if (seconds < 60) return seconds + " s";
    var minutes = Math.floor(seconds / 60); seconds %= 60;
    if (minutes < 60) return minutes < 10 && seconds ? minutes + " min " + seconds + " s" : minutes + " min";
    var hours = Math.floor(minutes / 60); minutes %= 60;
    if (hours < 48) return minutes ? hours + " h " + minutes + " min" : hours + " h";
    var days = Math.floor(hours / 24); hours %= 24;
    return hours ? days + " d " + hours + " h" : days + " d";
  }

  function localize(root) {
    root.querySelectorAll("time[data-local]").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (!isNaN(when)) { el.textContent = fmt.format(when); }
      el.removeAttribute("data-local");
    });
  }

  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-countdown]").forEach(function (el) {
      var left = (Date.parse(el.getAttribute("data-countdown")) - now) / 1000;
      el.textContent = left > 0 ? "in " + duration(left) : "overdue by " + duration(-left);
      el.classList.toggle("overdue", left <= 0);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    localize(document);
    tick();
    setInterval(tick, 1000);
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    localize(event.target.parentNode || document);
    tick();
  });
})();
