// The operator console: sign in with a token, see the workspace's audience syncs and their
// latest runs, start a run, and watch runs progress live over GraphQL subscriptions
// (workspaceRunUpdates for every run, syncRunEvents for the one on display).

import { ApiError, graphql, restGet } from "./api.js";
import { clear, el, show } from "./dom.js";
import { CANCEL, RUN, RUN_EVENTS, SYNCS, TRIGGER, VIEWER, WORKSPACE_RUNS } from "./queries.js";
import { forgetToken, savedToken, saveToken } from "./session.js";
import { SubscriptionSocket } from "./socket.js";

const ACTIVE = new Set(["queued", "running", "cancelling"]);
const MAX_EVENTS_SHOWN = 200;
const DONE = { add: "added", update: "updated", remove: "removed" };

const state = {
  token: null,
  viewer: null, // { role, account, workspace }
  syncs: [], // audience syncs, oldest first
  latest: new Map(), // sync id -> its newest run
  notices: new Map(), // sync id -> { text, kind }
  selected: null, // { runId, syncId, run, lastSeq, rowStatus, stop }
  socket: null,
  wasLive: false, // the socket was live before: after a reconnect, catch up
};

const $ = (id) => document.getElementById(id);
const canRun = () => state.viewer && state.viewer.role !== "viewer";

// ---------------------------------------------------------------- signing in and out

async function signIn(token, { remembered }) {
  $("login-error").hidden = true;
  $("sign-in").disabled = true;
  try {
    const data = await graphql(token, VIEWER);
    if (!data?.viewer) throw new ApiError("UNAUTHENTICATED", "no viewer");
    state.token = token;
    state.viewer = data.viewer;
    saveToken(token);
    showWorkspace();
    await loadSyncs();
    openSocket();
  } catch (error) {
    const refused = error.code === "UNAUTHENTICATED" || error.code === "FORBIDDEN";
    if (refused) forgetToken();
    showLogin(loginMessage(error, remembered));
  } finally {
    $("sign-in").disabled = false;
  }
}

function loginMessage(error, remembered) {
  if (error.code === "UNAUTHENTICATED") {
    return remembered
      ? "The saved token is no longer accepted (revoked or expired). Paste a current one."
      : "This token was not accepted: it is unknown, revoked or expired. " +
          "Check it and paste it again.";
  }
  if (error.code === "FORBIDDEN") return "This token may not read its workspace.";
  return `Could not sign in: ${error.message}`;
}

function signOut(message) {
  forgetToken();
  state.socket?.stop();
  state.selected?.stop?.();
  Object.assign(state, {
    token: null,
    viewer: null,
    syncs: [],
    selected: null,
    socket: null,
    wasLive: false,
  });
  state.latest.clear();
  state.notices.clear();
  showLogin(message);
}

function showLogin(message) {
  show($("login"), true);
  show($("who"), false);
  show($("syncs-section"), false);
  show($("run"), false);
  $("token").value = "";
  $("login-error").textContent = message ?? "";
  $("login-error").hidden = !message;
  $("token").focus();
}

function showWorkspace() {
  const { viewer } = state;
  show($("login"), false);
  show($("who"), true);
  show($("syncs-section"), true);
  $("workspace-name").textContent = viewer.workspace.name;
  $("role").textContent = viewer.role;
  $("account").textContent = viewer.account.email;
  show($("readonly-note"), !canRun());
}

// ---------------------------------------------------------------- data

async function loadSyncs() {
  const data = await graphql(state.token, SYNCS, { workspaceId: state.viewer.workspace.id });
  const connection = data.audienceSyncs;
  state.syncs = connection.edges.map((edge) => edge.node);
  for (const sync of state.syncs) {
    const run = sync.runs.edges[0]?.node;
    if (run) state.latest.set(sync.id, run);
  }
  const total = connection.totalCount;
  $("sync-count").textContent =
    total > state.syncs.length ? `${state.syncs.length} of ${total}` : String(total);
  renderSyncs();
}

/** A run snapshot arrived (subscription, mutation or query): show it wherever it appears. */
function applyRun(run) {
  if (!ACTIVE.has(run.status)) state.notices.delete(run.syncId); // "already running" is over
  const current = state.latest.get(run.syncId);
  if (!current || current.id === run.id || run.createdAt >= current.createdAt) {
    state.latest.set(run.syncId, run);
    renderSyncRow(run.syncId);
  }
  if (state.selected?.runId === run.id) {
    state.selected.run = run;
    renderRun();
  }
}

async function refreshRun(runId) {
  try {
    const data = await graphql(state.token, RUN, { id: runId });
    if (data.syncRun) applyRun(data.syncRun);
  } catch (error) {
    notify(`Could not refresh the run: ${error.message}`, "error");
  }
}

// ---------------------------------------------------------------- live updates

function openSocket() {
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new SubscriptionSocket({
    url: `${scheme}//${window.location.host}/graphql`,
    token: state.token,
    onState: (socketState) => onSocketState(socketState),
  });
  state.socket = socket;
  socket.subscribe(
    () => ({ query: WORKSPACE_RUNS, variables: { workspaceId: state.viewer.workspace.id } }),
    {
      next: (payload) => {
        const run = payload.data?.workspaceRunUpdates;
        if (run) applyRun(run);
      },
      error: (errors) => notify(`Live updates stopped: ${errors[0]?.message}`, "error"),
      complete: () => {},
    },
  );
  socket.start();
}

function onSocketState(socketState) {
  const live = $("live");
  live.dataset.state = socketState;
  live.textContent = {
    connecting: "connecting…",
    live: "live",
    reconnecting: "reconnecting…",
    refused: "signed out",
  }[socketState];
  if (socketState === "refused") {
    signOut("The server closed the live connection: the token is no longer accepted.");
  } else if (socketState === "live") {
    // Catch up on whatever changed while the socket was down.
    if (state.wasLive) loadSyncs().catch((error) => notify(error.message, "error"));
    state.wasLive = true;
  }
}

// ---------------------------------------------------------------- actions

async function trigger(sync, button) {
  button.disabled = true;
  state.notices.delete(sync.id);
  try {
    const data = await graphql(state.token, TRIGGER, { id: sync.id });
    const run = data.triggerAudienceSync;
    applyRun(run);
    selectRun(run.syncId, run.id);
  } catch (error) {
    if (error.code === "CONFLICT") {
      const active = error.details.find((detail) => detail.field === "run_id")?.message;
      const text = active
        ? `A run of this sync is already in progress; it is shown below. (${error.message})`
        : `This sync cannot run now: ${error.message}`;
      state.notices.set(sync.id, { text, kind: "warning" });
      if (active && active !== "None") selectRun(sync.id, active);
    } else if (error.code === "FORBIDDEN") {
      state.notices.set(sync.id, { text: "Your role may not start runs.", kind: "error" });
    } else {
      const text = `Could not start a run: ${error.message}`;
      state.notices.set(sync.id, { text, kind: "error" });
    }
  } finally {
    button.disabled = false;
    renderSyncRow(sync.id);
  }
}

async function cancelSelected() {
  const selected = state.selected;
  if (!selected) return;
  $("cancel-run").disabled = true;
  try {
    const data = await graphql(state.token, CANCEL, { id: selected.runId });
    applyRun(data.cancelSyncRun);
  } catch (error) {
    notify(`Could not cancel the run: ${error.message}`, "error");
  } finally {
    $("cancel-run").disabled = false;
  }
}

function selectRun(syncId, runId) {
  if (state.selected?.runId === runId) return;
  state.selected?.stop?.();
  const selected = {
    runId,
    syncId,
    run: state.latest.get(syncId)?.id === runId ? state.latest.get(syncId) : null,
    lastSeq: 0,
    rowStatus: "",
    stop: null,
  };
  state.selected = selected;
  clear($("run-events"));
  $("row-status").value = "";
  show($("run"), true);
  renderRun();
  refreshRun(runId);
  loadRows();
  selected.stop = state.socket?.subscribe(
    () => ({ query: RUN_EVENTS, variables: { runId, after: selected.lastSeq } }),
    {
      next: (payload) => {
        const event = payload.data?.syncRunEvents;
        if (!event) {
          addEventLine(selected, { type: "error", text: payload.errors?.[0]?.message ?? "error" });
          return;
        }
        if (event.seq <= selected.lastSeq) return;
        selected.lastSeq = event.seq;
        addEventLine(selected, describeEvent(event));
        // Status and phase changes are few: fetch the whole run for them.
        if (event.type === "status" || event.type === "phase") refreshRun(runId);
      },
      error: (errors) => addEventLine(selected, { type: "error", text: errors[0]?.message }),
      complete: () => {
        refreshRun(runId);
        loadRows();
      },
    },
  );
  $("run").scrollIntoView({ block: "nearest", behavior: "smooth" });
}

async function loadRows() {
  const selected = state.selected;
  if (!selected) return;
  const body = $("run-rows").tBodies[0];
  const empty = $("run-rows-empty");
  try {
    const rows = await restGet(
      state.token,
      `/workspaces/${state.viewer.workspace.id}/runs/${selected.runId}/rows`,
      { status: selected.rowStatus, limit: 100 },
    );
    if (state.selected !== selected) return;
    clear(body);
    for (const row of rows) {
      body.append(
        el("tr", {}, [
          el("td", { className: "mono" }, row.member_key ?? "(no key)"),
          el("td", {}, row.operation),
          el("td", {}, el("span", { className: `status status-${row.status}` }, row.status)),
          el("td", {}, row.error),
        ]),
      );
    }
    const kind = selected.rowStatus || "rejected, invalid or failed";
    if (rows.length === 0) empty.textContent = `No ${kind} rows in this run.`;
    else empty.textContent = rows.length === 100 ? "Showing the first 100." : "";
    show(empty, Boolean(empty.textContent));
    show($("run-rows"), rows.length > 0);
  } catch (error) {
    empty.textContent = `Could not list the rows: ${error.message}`;
    show(empty, true);
  }
}

function notify(text, kind = "info") {
  const notice = $("notice");
  notice.textContent = text;
  notice.dataset.kind = kind;
  show(notice, true);
}

// ---------------------------------------------------------------- rendering

function renderSyncs() {
  const body = $("syncs").tBodies[0];
  clear(body);
  for (const sync of state.syncs) body.append(syncRow(sync));
  show($("syncs"), state.syncs.length > 0);
  show($("no-syncs"), state.syncs.length === 0);
}

function renderSyncRow(syncId) {
  const sync = state.syncs.find((candidate) => candidate.id === syncId);
  const existing = document.querySelector(`tr[data-sync-id="${CSS.escape(syncId)}"]`);
  if (sync && existing) existing.replaceWith(syncRow(sync));
}

function syncRow(sync) {
  const run = state.latest.get(sync.id);
  const notice = state.notices.get(sync.id);
  const actions = el("td", { className: "actions" });
  if (canRun()) {
    const button = el("button", { type: "button", className: "run-now" }, "Run now");
    button.addEventListener("click", (event) => {
      event.stopPropagation();
      trigger(sync, button);
    });
    actions.append(button);
  }
  const row = el("tr", { className: "sync", dataset: { syncId: sync.id } }, [
    el("td", {}, [
      el("div", { className: "sync-name" }, sync.name),
      el(
        "div",
        { className: "muted small" },
        `${sync.audience.name} → ${sync.destination.name} (${sync.destination.type}) · ` +
          `${sync.syncMode} · ${sync.status}${sync.schedule ? ` · ${sync.schedule}` : ""}`,
      ),
      notice
        ? el("div", { className: `row-notice ${notice.kind}`, role: "alert" }, notice.text)
        : "",
    ]),
    el(
      "td",
      {},
      run
        ? [statusBadge(run.status), el("div", { className: "muted small" }, when(run))]
        : el("span", { className: "muted" }, "never run"),
    ),
    el("td", { className: "progress-col" }, run ? progressBar(run) : ""),
    el("td", { className: "run-counts small" }, run ? countsLine(run) : ""),
    actions,
  ]);
  if (run) {
    row.classList.add("selectable");
    row.title = "Show this run";
    row.addEventListener("click", () => selectRun(sync.id, run.id));
  }
  if (state.selected?.syncId === sync.id) row.classList.add("selected");
  return row;
}

function renderRun() {
  const selected = state.selected;
  if (!selected) return;
  const run = selected.run;
  const sync = state.syncs.find((candidate) => candidate.id === selected.syncId);
  $("run-title").textContent = `Run ${selected.runId.slice(0, 8)} of ${sync?.name ?? "a sync"}`;
  const status = $("run-status");
  status.textContent = run?.status ?? "loading…";
  status.className = `status run-status status-${run?.status ?? "queued"}`;
  $("run-phase").textContent = run?.phase ? `phase: ${run.phase}` : run ? when(run) : "";
  $("run-progress").value = run?.progress ?? 0;
  show($("cancel-run"), Boolean(run && canRun() && ACTIVE.has(run.status)));
  const counts = $("run-counts");
  clear(counts);
  if (run) {
    const failed = total(run.failed);
    const tiles = [
      ["in-audience", "In audience", run.querySize],
      ["added", "Added", `${run.succeeded.add} of ${run.planned.add}`],
      ["updated", "Updated", `${run.succeeded.update} of ${run.planned.update}`],
      ["removed", "Removed", `${run.succeeded.remove} of ${run.planned.remove}`],
      ["failed", "Failed", failed],
      ["invalid", "Invalid", run.invalid],
      ["unchanged", "Unchanged", run.unchanged],
    ];
    for (const [key, label, value] of tiles) {
      const tile = el("div", { dataset: { count: key } }, [
        el("dt", {}, label),
        el("dd", {}, value),
      ]);
      if ((key === "failed" || key === "invalid") && value > 0) tile.classList.add("bad");
      counts.append(tile);
    }
  }
  const error = $("run-error");
  error.textContent = run?.error ? `${run.error.code}: ${run.error.message}` : "";
  show(error, Boolean(run?.error));
  for (const row of document.querySelectorAll("tr.sync")) {
    row.classList.toggle("selected", row.dataset.syncId === selected.syncId);
  }
}

function addEventLine(selected, { type, text, at }) {
  if (state.selected !== selected) return;
  const list = $("run-events");
  list.append(
    el("li", { className: `event event-${type}` }, [
      el("span", { className: "muted mono" }, at ? new Date(at).toLocaleTimeString() : ""),
      el("span", { className: "event-type" }, type),
      el("span", {}, text ?? ""),
    ]),
  );
  while (list.children.length > MAX_EVENTS_SHOWN) list.firstElementChild.remove();
}

function describeEvent(event) {
  const payload = event.payload ?? {};
  const base = { type: event.type, at: event.at };
  switch (event.type) {
    case "status":
      return { ...base, text: [payload.from, payload.status].filter(Boolean).join(" → ") };
    case "phase":
      return { ...base, text: payload.phase ?? "" };
    case "progress":
      return { ...base, text: countsText(payload.succeeded ?? {}, payload.failed ?? {}) };
    default:
      return { ...base, text: payload.message ?? JSON.stringify(payload) };
  }
}

function statusBadge(status) {
  return el("span", { className: `status run-status status-${status}` }, status);
}

function progressBar(run) {
  const percent = Math.round((run.progress ?? 0) * 100);
  return el("div", { className: "progress" }, [
    el("progress", { max: 1, value: run.progress ?? 0 }),
    el("span", { className: "muted small" }, `${percent}%`),
  ]);
}

function countsLine(run) {
  return `${countsText(run.succeeded, run.failed, run.invalid)} of ${run.querySize}`;
}

/** "added 4 · updated 0 · removed 0", then failed and invalid rows when there are any. */
function countsText(succeeded, failed, invalid = 0) {
  const parts = Object.entries(DONE).map(
    ([operation, done]) => `${done} ${succeeded[operation] ?? 0}`,
  );
  if (total(failed)) parts.push(`failed ${total(failed)}`);
  if (invalid) parts.push(`invalid ${invalid}`);
  return parts.join(" · ");
}

function total(counts) {
  return (counts.add ?? 0) + (counts.update ?? 0) + (counts.remove ?? 0);
}

function when(run) {
  const time = (iso) => new Date(iso).toLocaleString();
  if (run.finishedAt) return `finished ${time(run.finishedAt)}`;
  if (run.startedAt) return `started ${time(run.startedAt)}`;
  return `queued ${time(run.createdAt)}`;
}

// ---------------------------------------------------------------- wiring

function start() {
  $("loading").remove();
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token").value.trim();
    if (token) signIn(token, { remembered: false });
  });
  $("forget").addEventListener("click", () =>
    signOut("Token forgotten. Paste one to sign in again."),
  );
  $("reload").addEventListener("click", () =>
    loadSyncs().catch((error) => notify(error.message, "error")),
  );
  $("cancel-run").addEventListener("click", cancelSelected);
  $("row-status").addEventListener("change", (event) => {
    if (!state.selected) return;
    state.selected.rowStatus = event.target.value;
    loadRows();
  });
  const token = savedToken();
  if (token) signIn(token, { remembered: true });
  else showLogin();
}

start();
