// The labeling page: rate each step of a solution, in order, until the first wrong one.
// Text from the server is only ever set with textContent; KaTeX then renders the math in those text nodes.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const config = JSON.parse($("label-config").textContent);
  const API = config.api;
  const RATINGS = [
    { value: -1, name: "negative", label: "Negative", sign: "−", key: "1" },
    { value: 0, name: "neutral", label: "Neutral", sign: "0", key: "2" },
    { value: 1, name: "positive", label: "Positive", sign: "+", key: "3" },
  ];
  const KEY_RATING = { "1": -1, "-": -1, "2": 0, "0": 0, "3": 1, "+": 1, "=": 1 };
  const SAVE_DELAY_MS = 300;
  const MAX_RETRY_MS = 15000;
  const LEASE_WARN_MS = 5 * 60 * 1000;  // the countdown turns to a warning this long before the lease ends
  const MATH = {
    delimiters: [
      { left: "$$", right: "$$", display: true },
      { left: "\\[", right: "\\]", display: true },
      { left: "\\(", right: "\\)", display: false },
      { left: "$", right: "$", display: false },
    ],
    throwOnError: false,
    strict: false,
    // Bounds on what a step may ask of the renderer: no \rule{100000em}{..} over the rating buttons,
    // no macro that expands without end.
    maxSize: 20,
    maxExpand: 200,
  };

  let task = null;        // the assignment payload from the API
  let draft = null;       // what is saved to the server (see newDraft)
  let focus = 0;          // index into steps 0..open-1, then the alternatives
  let undoStack = [];     // snapshots before each rating, for undo
  let submitting = false;
  let stepEls = [];
  let altEls = [];
  let altBuiltFor = null;
  let visibleSince = document.visibilityState === "visible" ? performance.now() : null;
  const save = { timer: null, inFlight: false, dirty: false, retryMs: 0 };
  let clockSkewMs = 0;       // the server's clock minus ours (from the Date header), so expiry is the server's
  let leaseEndedShown = false;

  // ---- small helpers --------------------------------------------------------------------------
  function uuid4() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));  // randomUUID needs a secure context
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  function csrfToken() {
    const m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (m) return decodeURIComponent(m[1]);
    const input = document.querySelector("[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  async function api(method, path, body, { keepalive = false } = {}) {
    const headers = { Accept: "application/json", "X-CSRFToken": csrfToken() };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch(API + path, {
      method, headers, keepalive, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    noteServerClock(res.headers.get("Date"));
    let data = null;
    if (res.status !== 204) {
      const text = await res.text();
      try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
    }
    return { status: res.status, ok: res.ok, data };
  }

  function errorMessage(r) {
    const e = r.data && r.data.error;
    if (e && e.message) return e.field ? `${e.field}: ${e.message}` : String(e.message);
    if (r.data && r.data.detail) return String(r.data.detail);
    return `The server answered ${r.status}.`;
  }

  const retryable = (status) => status >= 500 || status === 408 || status === 429;
  function sleep(ms) {
    // Coming back online cuts the wait short.
    return new Promise((resolve) => {
      const done = () => { clearTimeout(timer); window.removeEventListener("online", done); resolve(); };
      const timer = setTimeout(done, ms);
      window.addEventListener("online", done);
    });
  }
  const nextDelay = (ms) => Math.min(ms ? ms * 2 : 1000, MAX_RETRY_MS);

  function showStatus(message, kind = "error", { login = false } = {}) {
    const el = $("status");
    el.textContent = message;
    if (login) {
      const a = document.createElement("a");
      a.href = config.loginUrl;
      a.textContent = "Log in again";
      el.append(" ", a);
    }
    el.className = `status ${kind}`;
    el.dataset.source = "";
    el.hidden = false;
  }

  function clearStatus() {
    $("status").hidden = true;
    $("status").textContent = "";
  }

  function showApiError(r, what) {
    const authProblem = r.status === 401 || (r.status === 403 && /credentials|CSRF|log/i.test(errorMessage(r)));
    showStatus(`${what}: ${errorMessage(r)}`, "error", { login: authProblem });
    $("status").dataset.source = what;
    if (task && [404, 409, 410].includes(r.status)) {
      // This assignment is gone (lease expired, submitted elsewhere): offer a way on.
      const next = document.createElement("button");
      next.type = "button";
      next.textContent = "Take the next task";
      next.addEventListener("click", () => { task = null; loadNext(); });
      $("status").append(" ", next);
    }
  }

  function setSaveStatus(text, kind = "") {
    const el = $("save-status");
    el.textContent = text;
    el.className = `save-status ${kind}`;
  }

  function renderMath(el, text) {
    el.textContent = text;
    if (typeof window.renderMathInElement === "function") window.renderMathInElement(el, MATH);
  }

  function renderAnswer(el, text) {
    // Answers are bare LaTeX ("\frac{1}{2}"); the rare one with delimiters goes through auto-render.
    if (typeof window.katex === "undefined" || /\$|\\\(|\\\[/.test(text)) return renderMath(el, text);
    el.textContent = "";
    window.katex.render(text, el, { throwOnError: false, strict: false, maxSize: MATH.maxSize, maxExpand: MATH.maxExpand });
  }

  // ---- the lease countdown --------------------------------------------------------------------
  function noteServerClock(header) {
    // The Date header has whole seconds: only a clock that is clearly off is corrected.
    const server = header ? Date.parse(header) : NaN;
    if (Number.isNaN(server)) return;
    const skew = server - Date.now();
    clockSkewMs = Math.abs(skew) > 2000 ? skew : 0;
  }

  function formatLeft(ms) {
    const s = Math.max(0, Math.ceil(ms / 1000));
    const h = Math.floor(s / 3600);
    const mmss = `${String(Math.floor((s % 3600) / 60)).padStart(h ? 2 : 1, "0")}:${String(s % 60).padStart(2, "0")}`;
    return h ? `${h}:${mmss}` : mmss;
  }

  function renderLease() {
    const el = $("lease");
    const ends = task && task.expires_at ? Date.parse(task.expires_at) : NaN;
    if (Number.isNaN(ends)) { el.textContent = ""; el.className = "lease"; return; }
    const left = ends - (Date.now() + clockSkewMs);
    if (left > 0) {
      el.textContent = `Reserved for you: ${formatLeft(left)} left`;
      el.className = left <= LEASE_WARN_MS ? "lease warning" : "lease";
      return;
    }
    el.textContent = "Time is up";
    el.className = "lease expired";
    if (!leaseEndedShown && !submitting) {
      leaseEndedShown = true;
      showStatus("Your time on this task ran out: it went back to the queue and these ratings can no longer be "
                 + "submitted.", "error");
      $("status").dataset.source = "Lease expired";
      const next = document.createElement("button");
      next.type = "button";
      next.textContent = "Take the next task";
      next.addEventListener("click", () => { task = null; loadNext(); });
      $("status").append(" ", next);
    }
  }

  // ---- time on task ---------------------------------------------------------------------------
  function elapsedMs() {
    const running = visibleSince === null ? 0 : performance.now() - visibleSince;
    return Math.round((draft ? draft.elapsed_ms : 0) + running);
  }

  function foldTime() {
    if (draft && visibleSince !== null) draft.elapsed_ms = elapsedMs();
    visibleSince = document.visibilityState === "visible" ? performance.now() : null;
  }

  function formatTime(ms) {
    const s = Math.floor(ms / 1000);
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  }

  // ---- draft ----------------------------------------------------------------------------------
  function newDraft() {
    return { version: 1, client_id: uuid4(), ratings: [], flags: [], alt_ratings: {}, human_completion: "",
             reason_kind: null, reason: "", elapsed_ms: 0, saved_at: 0 };
  }

  function cleanDraft(d, stepCount) {
    if (!d || typeof d !== "object" || Array.isArray(d)) return null;
    const out = newDraft();
    if (typeof d.client_id === "string" && /^[0-9a-f-]{36}$/i.test(d.client_id)) out.client_id = d.client_id;
    if (Array.isArray(d.ratings)) {
      for (const r of d.ratings.slice(0, stepCount)) {
        if (![-1, 0, 1].includes(r)) break;
        out.ratings.push(r);
        if (r === -1) break;
      }
    }
    if (Array.isArray(d.flags)) out.flags = d.flags.slice(0, stepCount).map(Boolean);
    if (d.alt_ratings && typeof d.alt_ratings === "object") {
      for (const [step, items] of Object.entries(d.alt_ratings)) {
        if (!items || typeof items !== "object") continue;
        out.alt_ratings[step] = {};
        for (const [j, v] of Object.entries(items)) {
          if (v && [-1, 0, 1, null].includes(v.rating)) out.alt_ratings[step][j] = { rating: v.rating, flagged: Boolean(v.flagged) };
        }
      }
    }
    if (typeof d.human_completion === "string") out.human_completion = d.human_completion;
    if (["bad_problem", "give_up"].includes(d.reason_kind)) out.reason_kind = d.reason_kind;
    if (typeof d.reason === "string") out.reason = d.reason;
    if (Number.isFinite(d.elapsed_ms) && d.elapsed_ms > 0) out.elapsed_ms = d.elapsed_ms;
    if (Number.isFinite(d.saved_at)) out.saved_at = d.saved_at;
    return out;
  }

  const localKey = () => `stepwise:draft:${task.assignment_id}`;

  function readLocal() {
    try { return JSON.parse(localStorage.getItem(localKey()) || "null"); } catch (e) { return null; }
  }

  function draftSnapshot() {
    return { ...draft, elapsed_ms: elapsedMs() };
  }

  function writeLocal() {
    try { localStorage.setItem(localKey(), JSON.stringify(draftSnapshot())); } catch (e) { /* private mode */ }
  }

  function changed() {
    draft.saved_at = Date.now();
    writeLocal();
    refresh();
    scheduleSave();
  }

  function scheduleSave(delay = SAVE_DELAY_MS) {
    clearTimeout(save.timer);
    save.timer = setTimeout(flushSave, delay);
    if (!save.retryMs) setSaveStatus("Saving…");
  }

  async function flushSave() {
    save.timer = null;
    if (!task || submitting) return;
    if (save.inFlight) { save.dirty = true; return; }
    save.inFlight = true;
    save.dirty = false;
    const forTask = task;
    let r = null;
    try {
      r = await api("PUT", `assignments/${forTask.assignment_id}/draft/`, draftSnapshot());
    } catch (e) {
      r = null;  // network error
    }
    save.inFlight = false;
    if (task !== forTask || submitting) return;
    if (r && r.ok) {
      save.retryMs = 0;
      setSaveStatus("Saved", "ok");
      if (r.data && r.data.expires_at) { task.expires_at = r.data.expires_at; renderLease(); }  // renewed
      if ($("status").dataset.source === "Draft not saved") clearStatus();
      if (save.dirty) scheduleSave(0);
    } else if (r && !retryable(r.status)) {
      save.retryMs = 0;
      setSaveStatus("Not saved", "bad");
      // A draft response that lands after a failed submit must not hide the submit's error (and its way on).
      if ($("status").dataset.source !== "Not submitted") showApiError(r, "Draft not saved");
    } else {
      save.retryMs = nextDelay(save.retryMs);
      setSaveStatus(`Not saved — retrying in ${Math.round(save.retryMs / 1000)} s`, "bad");
      clearTimeout(save.timer);
      save.timer = setTimeout(flushSave, save.retryMs);
    }
  }

  function saveNow() {
    // The tab is going away: a keepalive request outlives the page.
    if (!task || submitting) return;
    foldTime();
    writeLocal();
    clearTimeout(save.timer);
    const url = `assignments/${task.assignment_id}/draft/`;
    api("PUT", url, draftSnapshot(), { keepalive: true }).catch(() => {});
  }

  // ---- derived state --------------------------------------------------------------------------
  const negativeAt = () => draft.ratings.indexOf(-1);

  function openSteps() {
    const neg = negativeAt();
    if (neg >= 0) return neg + 1;
    return Math.min(draft.ratings.length + 1, task.steps.length);
  }

  function alternativesHere() {
    const neg = negativeAt();
    const alts = neg >= 0 && task.alternatives ? task.alternatives[String(neg)] : null;
    return Array.isArray(alts) ? alts : [];
  }

  function altRating(j) {
    const here = draft.alt_ratings[String(negativeAt())] || {};
    return here[String(j)] || null;
  }

  function finishReason() {
    if (negativeAt() >= 0) return "found_error";
    if (draft.ratings.length === task.steps.length) return "solution";
    return null;
  }

  const altsMissing = () => alternativesHere().filter((_, j) => !altRating(j) || altRating(j).rating == null).length;
  const focusCount = () => openSteps() + alternativesHere().length;

  // ---- actions --------------------------------------------------------------------------------
  function remember() {
    undoStack.push(JSON.stringify({ ratings: draft.ratings, alt_ratings: draft.alt_ratings, focus }));
    if (undoStack.length > 100) undoStack.shift();
  }

  function rateStep(i, value) {
    if (submitting || i >= openSteps()) return;
    remember();
    const r = draft.ratings;
    if (i === r.length) r.push(value); else r[i] = value;
    if (value === -1) r.length = i + 1;
    if (value === -1) focus = alternativesHere().length ? openSteps() : i;
    else focus = Math.min(i + 1, openSteps() - 1);
    changed();
    scrollToFocus();
  }

  function rateAlt(j, value) {
    if (submitting) return;
    remember();
    const key = String(negativeAt());
    const here = { ...(draft.alt_ratings[key] || {}) };
    here[String(j)] = { rating: value, flagged: Boolean(here[String(j)] && here[String(j)].flagged) };
    draft.alt_ratings = { ...draft.alt_ratings, [key]: here };
    focus = Math.min(openSteps() + j + 1, focusCount() - 1);
    changed();
    scrollToFocus();
  }

  function rateFocused(value) {
    const open = openSteps();
    if (focus < open) rateStep(focus, value); else rateAlt(focus - open, value);
  }

  function toggleFlag(item = focus) {
    if (submitting) return;
    const open = openSteps();
    if (item < open) {
      draft.flags[item] = !draft.flags[item];
      for (let k = 0; k < draft.flags.length; k++) draft.flags[k] = Boolean(draft.flags[k]);
    } else {
      const key = String(negativeAt());
      const j = String(item - open);
      const here = { ...(draft.alt_ratings[key] || {}) };
      const prev = here[j] || { rating: null, flagged: false };
      here[j] = { ...prev, flagged: !prev.flagged };
      draft.alt_ratings = { ...draft.alt_ratings, [key]: here };
    }
    changed();
  }

  function undo() {
    if (submitting) return;
    if (undoStack.length) {
      const prev = JSON.parse(undoStack.pop());
      draft.ratings = prev.ratings;
      draft.alt_ratings = prev.alt_ratings;
      focus = prev.focus;
    } else if (draft.ratings.length) {
      focus = draft.ratings.length - 1;  // after a reload there is no history: undo the last step
      draft.ratings.pop();
    } else {
      return;
    }
    changed();
    scrollToFocus();
  }

  function moveFocus(delta) {
    focus = Math.max(0, Math.min(focus + delta, focusCount() - 1));
    refresh();
    scrollToFocus();
  }

  function scrollToFocus() {
    const el = focusedElement();
    if (el) el.scrollIntoView({ block: "nearest" });
  }

  function focusedElement() {
    const open = openSteps();
    return focus < open ? stepEls[focus] : altEls[focus - open];
  }

  function openReason(kind) {
    if (submitting) return;
    draft.reason_kind = draft.reason_kind === kind ? null : kind;
    changed();
    if (draft.reason_kind) $("reason").focus();
  }

  function closeReason() {
    draft.reason_kind = null;
    changed();
  }

  // ---- submit and next task -------------------------------------------------------------------
  function submitBody(finish) {
    const body = {
      client_id: draft.client_id,
      ratings: draft.ratings.map((rating, step) => ({ step, rating, flagged: Boolean(draft.flags[step]) })),
      finish_reason: finish,
      total_time_ms: elapsedMs(),
    };
    if (finish === "found_error") {
      const alts = alternativesHere();
      if (alts.length) {
        body.alternative_ratings = alts.map((_, j) => ({
          index: j, rating: altRating(j).rating, flagged: Boolean(altRating(j).flagged) }));
      }
      if (task.allow_human_completion && draft.human_completion.trim()) body.human_completion = draft.human_completion;
    }
    if (finish === "bad_problem" || finish === "give_up") body.reason = draft.reason.trim();
    return body;
  }

  async function submit(kind = null) {
    if (!task || submitting) return;
    const finish = kind || finishReason();
    if (!finish) return;
    if (kind && !draft.reason.trim()) {
      showStatus("Please write a reason first.", "error");
      $("reason").focus();
      return;
    }
    if (!kind && altsMissing()) {
      showStatus("Rate every alternative step before submitting.", "error");
      return;
    }
    foldTime();
    const body = submitBody(finish);
    const forTask = task;
    submitting = true;
    clearTimeout(save.timer);
    writeLocal();
    clearStatus();
    refresh();
    let wait = 0;
    for (;;) {
      let r = null;
      try {
        r = await api("POST", `assignments/${forTask.assignment_id}/submit/`, body);
      } catch (e) {
        r = null;
      }
      if (task !== forTask) return;
      if (r && r.ok) break;
      if (r && !retryable(r.status)) {
        submitting = false;
        showApiError(r, "Not submitted");
        refresh();
        return;
      }
      wait = nextDelay(wait);
      setSaveStatus(`Not submitted — retrying in ${Math.round(wait / 1000)} s`, "bad");
      await sleep(wait);
    }
    try { localStorage.removeItem(localKey()); } catch (e) { /* ignore */ }
    setSaveStatus("Submitted", "ok");
    await loadNext();
  }

  async function fetchTask(method, path) {
    // Retries network errors and 5xx; returns the API result otherwise.
    let wait = 0;
    for (;;) {
      try {
        const r = await api(method, path);
        if (!retryable(r.status)) { clearStatus(); return r; }
      } catch (e) { /* offline */ }
      wait = nextDelay(wait);
      showStatus(`Cannot reach the server — retrying in ${Math.round(wait / 1000)} s.`, "warn");
      await sleep(wait);
    }
  }

  async function loadNext() {
    showOnly("loading");
    const r = await fetchTask("POST", "queue/next/");
    if (r.status === 204) return showEmpty();
    if (!r.ok) {
      showEmpty();
      return showApiError(r, "Could not get a task");
    }
    showTask(r.data);
  }

  async function loadAssignment(id) {
    const r = await fetchTask("GET", `assignments/${id}/`);
    if (r.ok && r.data && r.data.status !== "submitted") { showTask(r.data); return true; }
    return false;  // expired or submitted meanwhile: take the next one
  }

  function showOnly(which) {
    for (const id of ["loading", "empty", "task"]) $(id).hidden = id !== which;
  }

  function showEmpty() {
    task = null;
    draft = null;
    submitting = false;
    replaceUrl(config.labelUrl);
    showOnly("empty");
  }

  // ---- rendering ------------------------------------------------------------------------------
  function ratingButtons(labelText) {
    const group = document.createElement("div");
    group.className = "step-actions";
    const ratings = document.createElement("div");
    ratings.className = "rating-buttons";
    ratings.setAttribute("role", "group");
    ratings.setAttribute("aria-label", labelText);
    for (const r of RATINGS) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = `rate rate-${r.name}`;
      b.dataset.rating = String(r.value);
      b.setAttribute("aria-pressed", "false");
      b.title = `${r.label} (key ${r.key})`;
      const sign = document.createElement("span");
      sign.className = "sign";
      sign.textContent = r.sign;
      const kbd = document.createElement("kbd");
      kbd.textContent = r.key;
      b.append(sign, ` ${r.label} `, kbd);
      ratings.append(b);
    }
    const flag = document.createElement("button");
    flag.type = "button";
    flag.className = "flag";
    flag.setAttribute("aria-pressed", "false");
    flag.title = "Flag as unsure (key f)";
    const kbd = document.createElement("kbd");
    kbd.textContent = "f";
    flag.append("⚑ Unsure ", kbd);
    group.append(ratings, flag);
    return group;
  }

  function itemElement(text, number, attrs) {
    const li = document.createElement("li");
    li.className = "step";
    Object.assign(li.dataset, attrs);
    const num = document.createElement("div");
    num.className = "step-number";
    num.textContent = number;
    const body = document.createElement("div");
    body.className = "step-body";
    const textEl = document.createElement("div");
    textEl.className = "step-text math-text";
    renderMath(textEl, text);
    body.append(textEl, ratingButtons(`Rate ${number.toLowerCase()}`));
    li.append(num, body);
    return li;
  }

  function showTask(payload) {
    task = payload;
    task.steps = Array.isArray(task.steps) ? task.steps : [];
    task.alternatives = task.alternatives && typeof task.alternatives === "object" ? task.alternatives : {};
    const server = cleanDraft(task.draft, task.steps.length);
    const local = cleanDraft(readLocal(), task.steps.length);
    const pick = server && local ? (local.saved_at > server.saved_at ? local : server) : (server || local);
    draft = pick || newDraft();
    undoStack = [];
    submitting = false;
    save.retryMs = 0;
    visibleSince = document.visibilityState === "visible" ? performance.now() : null;
    focus = firstUnrated();
    replaceUrl(`${config.labelUrl}${task.assignment_id}/`);

    $("task-title").textContent = `Task ${String(task.assignment_id).slice(0, 8)}`;  // a random id: says no order
    leaseEndedShown = false;
    renderLease();
    renderMath($("problem"), task.problem || "");
    const hint = task.answer_hint;
    $("answer-hint").hidden = hint === null || hint === undefined || hint === "";
    if (!$("answer-hint").hidden) renderAnswer($("answer"), String(hint));
    const rollout = task.rollout_hint;  // only where the round turns rollout hints on
    $("rollout-hint").hidden = !rollout;
    $("rollout-hint").textContent = !rollout ? "" : rollout.first_error == null
      ? "(Hint from automatic rollouts: they found no wrong step.)"
      : `(Hint from automatic rollouts: the first wrong step may be step ${rollout.first_error}.)`;

    const list = $("steps");
    $("task").append($("after-error"));  // park it before the old steps go
    list.textContent = "";
    stepEls = task.steps.map((text, i) => itemElement(String(text), `Step ${i + 1}`, { step: String(i) }));
    list.append(...stepEls);
    altBuiltFor = null;
    altEls = [];
    $("human-completion").value = draft.human_completion;
    $("reason").value = draft.reason;
    setSaveStatus(pick ? "Draft restored" : "");
    showOnly("task");
    refresh();
    scrollToFocus();
    if (!server || pick !== server) scheduleSave(0);  // the server must hold the client_id before any submit
  }

  function firstUnrated() {
    const neg = negativeAt();
    if (neg < 0) return Math.min(draft.ratings.length, task.steps.length - 1);
    const alts = alternativesHere();
    const j = alts.findIndex((_, k) => !altRating(k) || altRating(k).rating == null);
    return alts.length ? openSteps() + (j < 0 ? alts.length - 1 : j) : neg;
  }

  function replaceUrl(url) {
    if (location.pathname !== url) window.history.replaceState(null, "", url);
  }

  function buildAlternatives(neg) {
    const list = $("alternative-list");
    list.textContent = "";
    const alts = neg >= 0 && task.alternatives[String(neg)];
    altEls = Array.isArray(alts) ? alts.map((text, j) => itemElement(String(text), `Alternative ${j + 1}`, { alt: String(j) })) : [];
    list.append(...altEls);
    altBuiltFor = neg;
  }

  function paintItem(li, rating, flagged, locked, current) {
    li.classList.toggle("locked", locked);
    li.classList.toggle("current", current);
    li.dataset.rating = rating === null || rating === undefined ? "" : String(rating);
    li.setAttribute("aria-disabled", String(locked));
    if (current) li.setAttribute("aria-current", "step"); else li.removeAttribute("aria-current");
    const actions = li.querySelector(":scope > .step-body > .step-actions");
    for (const b of actions.querySelectorAll(".rate")) {
      b.disabled = locked || submitting;
      b.setAttribute("aria-pressed", String(rating === Number(b.dataset.rating)));
    }
    const flag = actions.querySelector(".flag");
    flag.disabled = locked || submitting;
    flag.setAttribute("aria-pressed", String(Boolean(flagged)));
  }

  function refresh() {
    if (!task) return;
    const n = task.steps.length;
    const rated = draft.ratings.length;
    const neg = negativeAt();
    const open = openSteps();
    focus = Math.max(0, Math.min(focus, focusCount() - 1));
    stepEls.forEach((li, i) => {
      paintItem(li, i < rated ? draft.ratings[i] : null, draft.flags[i], i >= open, focus === i);
    });

    if (altBuiltFor !== neg) buildAlternatives(neg);
    const after = $("after-error");
    const showHuman = neg >= 0 && Boolean(task.allow_human_completion);
    after.hidden = !(neg >= 0 && (altEls.length || showHuman));
    if (!after.hidden && after.parentElement !== stepEls[neg].querySelector(".step-body")) {
      stepEls[neg].querySelector(".step-body").append(after);
    }
    $("alternatives").hidden = altEls.length === 0;
    $("human-completion-box").hidden = !showHuman;
    $("human-completion").disabled = submitting;
    altEls.forEach((li, j) => {
      const r = altRating(j);
      paintItem(li, r ? r.rating : null, r && r.flagged, false, focus === open + j);
    });

    const missing = altsMissing();
    const finish = finishReason();
    let progress;
    if (neg >= 0) {
      progress = `Step ${neg + 1} is wrong — ` + (missing ? `rate ${missing} alternative step${missing > 1 ? "s" : ""}, then submit` : "ready to submit");
    } else if (finish === "solution") {
      progress = `All ${n} steps rated — ready to submit`;
    } else {
      progress = `Step ${rated + 1} of ${n}`;
    }
    $("progress").textContent = progress;
    $("submit").disabled = submitting || !finish || missing > 0;
    $("undo").disabled = submitting || (!undoStack.length && !rated);
    $("bad-problem").disabled = submitting;
    $("give-up").disabled = submitting;
    $("bad-problem").setAttribute("aria-pressed", String(draft.reason_kind === "bad_problem"));
    $("give-up").setAttribute("aria-pressed", String(draft.reason_kind === "give_up"));

    const panel = $("reason-panel");
    panel.hidden = !draft.reason_kind;
    if (draft.reason_kind === "bad_problem") {
      $("reason-label").textContent = "What is wrong with this problem?";
      $("reason-submit").textContent = "Submit as bad problem";
    } else if (draft.reason_kind === "give_up") {
      $("reason-label").textContent = "Why are you giving up on this task?";
      $("reason-submit").textContent = "Give up on this task";
    }
    $("reason-submit").disabled = submitting;
    $("reason").disabled = submitting;
    $("timer").textContent = `Time ${formatTime(elapsedMs())}`;
  }

  // ---- events ---------------------------------------------------------------------------------
  function onItemClick(event) {
    if (!task) return;
    const li = event.target.closest("li.step");
    if (!li || li.classList.contains("locked")) return;
    const open = openSteps();
    const item = li.dataset.alt !== undefined ? open + Number(li.dataset.alt) : Number(li.dataset.step);
    const button = event.target.closest("button");
    if (button && event.detail > 0) button.blur();  // a mouse click: the focus ring belongs to the current step
    if (button && button.classList.contains("rate")) {
      focus = item;
      rateFocused(Number(button.dataset.rating));
    } else if (button && button.classList.contains("flag")) {
      focus = item;
      toggleFlag(item);
    } else if (!event.target.closest("textarea, a") && focus !== item) {
      focus = item;
      refresh();
    }
  }

  function onKey(event) {
    if (!task) return;
    const t = event.target;
    if (t.matches && t.matches("textarea, input, select")) {
      if (event.key === "Escape") {
        if (t.id === "reason") closeReason();
        t.blur();
      } else if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && t.id === "reason") {
        event.preventDefault();
        submit(draft.reason_kind);
      }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const key = event.key;
    let handled = true;
    if (key in KEY_RATING) rateFocused(KEY_RATING[key]);
    else if (key === "j" || key === "ArrowDown") moveFocus(1);
    else if (key === "k" || key === "ArrowUp") moveFocus(-1);
    else if (key === "f") toggleFlag();
    else if (key === "u") undo();
    else if (key === "Enter") submit(draft.reason_kind);  // an open reason panel is the pending action
    else if (key === "Escape" && draft.reason_kind) closeReason();
    else handled = false;
    if (handled) event.preventDefault();  // also keeps Enter from clicking a focused button
  }

  function init() {
    $("steps").addEventListener("click", onItemClick);
    document.addEventListener("keydown", onKey);
    $("submit").addEventListener("click", () => submit());
    $("undo").addEventListener("click", undo);
    $("bad-problem").addEventListener("click", () => openReason("bad_problem"));
    $("give-up").addEventListener("click", () => openReason("give_up"));
    $("reason-cancel").addEventListener("click", closeReason);
    $("reason-submit").addEventListener("click", () => submit(draft.reason_kind));
    $("check-again").addEventListener("click", loadNext);
    $("reason").addEventListener("input", (e) => { draft.reason = e.target.value; changed(); });
    $("human-completion").addEventListener("input", (e) => { draft.human_completion = e.target.value; changed(); });
    document.addEventListener("visibilitychange", () => {
      foldTime();
      if (document.visibilityState === "hidden") saveNow();
    });
    window.addEventListener("pagehide", saveNow);
    window.addEventListener("online", () => { if (task && save.retryMs) scheduleSave(0); });
    setInterval(() => {
      if (!task) return;
      $("timer").textContent = `Time ${formatTime(elapsedMs())}`;
      renderLease();
    }, 1000);

    if (config.assignmentId) {
      loadAssignment(config.assignmentId).then((ok) => { if (!ok) loadNext(); });
    } else {
      loadNext();
    }
  }

  init();
})();
