// Admin lists of jobs, exports and rounds: poll the rows, not the broker; reload while one is pending or running.
document.addEventListener("DOMContentLoaded", function () {
  if (document.querySelector('progress[data-status="pending"], progress[data-status="running"]')) {
    setTimeout(function () { window.location.reload(); }, 2000);
  }
});
