// Small page behaviours htmx does not cover on its own.

// Upload progress: any htmx form with a [data-upload-progress] element inside fills its .progress-bar from
// htmx's xhr progress events, so a multi-gigabyte dataset does not look like a hung page.
document.addEventListener("htmx:xhr:progress", (event) => {
  const form = event.target.closest("form");
  const box = form && form.querySelector("[data-upload-progress]");
  if (!box || !event.detail.lengthComputable) return;
  const percent = Math.round((event.detail.loaded / event.detail.total) * 100);
  box.classList.add("is-active");
  box.querySelector(".progress-bar").style.width = percent + "%";
  box.querySelector("[data-upload-percent]").textContent =
    percent < 100 ? `Uploading… ${percent}%` : "Uploaded; checking the archive…";
});
