// A round's admin page: the bar polls the round's row through the admin-only API every second while it is under way.
document.addEventListener("DOMContentLoaded", function () {
  var box = document.getElementById("round-progress");
  if (!box) { return; }
  var bar = box.querySelector("progress"), label = box.querySelector(".label");
  function tick() {
    fetch(box.dataset.url, {credentials: "same-origin"}).then(function (r) { return r.json(); }).then(function (d) {
      var job = d.job || {};
      var done = d.status === "done", failed = d.status === "failed";
      bar.value = done ? 1 : (job.progress || 0);
      bar.dataset.status = d.status;
      label.textContent = d.status + (job.kind && !done ? " — " + job.kind + " " + job.done + "/" + job.total +
        (job.message ? " — " + job.message : "") : "") + (failed ? " — " + d.error : "");
      if (!done && !failed) { setTimeout(tick, 1000); }
    });
  }
  tick();
});
