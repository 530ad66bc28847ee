// The chat page of mailtriage: asks POST /v1/chat, reads its server-sent events
// from the fetch body (EventSource cannot POST or send a token), and shows the
// streaming answer, the findings and the tool calls. Log text is only ever put
// into the page as text (textContent), never as HTML: it is written by others.
"use strict";

const state = { conversationId: null, queueIds: new Set() };

function $(id) { return document.getElementById(id); }

function token() { return $("token").value.trim(); }

function headers(extra) {
  const h = Object.assign({}, extra || {});
  if (token()) { h["Authorization"] = "Bearer " + token(); }
  return h;
}

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) { node.textContent = String(text); }
  if (className) { node.className = className; }
  return node;
}

function traceLink(queueId) {
  const a = el("a", queueId, "trace");
  a.href = "/v1/messages/" + encodeURIComponent(queueId);
  a.dataset.queueId = queueId;
  a.addEventListener("click", (event) => {
    event.preventDefault();
    showTrace(queueId);
  });
  return a;
}

async function showTrace(queueId) {
  const out = $("trace");
  out.textContent = "Loading " + queueId + " ...";
  const response = await fetch("/v1/messages/" + encodeURIComponent(queueId),
    { headers: headers({ "Accept": "application/json" }) });
  const body = await response.json();
  out.textContent = JSON.stringify(body, null, 2);
}

// Text with every known queue ID turned into a link to its trace.
function linkified(text) {
  const fragment = document.createDocumentFragment();
  const ids = Array.from(state.queueIds).filter((q) => q.length > 0);
  if (ids.length === 0) { fragment.append(text); return fragment; }
  const escaped = ids.map((q) => q.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  const pattern = new RegExp("\\b(" + escaped.join("|") + ")\\b", "g");
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    fragment.append(text.slice(last, match.index));
    fragment.append(traceLink(match[0]));
    last = match.index + match[0].length;
  }
  fragment.append(text.slice(last));
  return fragment;
}

function collectQueueIds(value) {
  if (Array.isArray(value)) { value.forEach(collectQueueIds); return; }
  if (value && typeof value === "object") {
    for (const [key, item] of Object.entries(value)) {
      if (key === "queue_id" && typeof item === "string") { state.queueIds.add(item); }
      else if (key === "queue_ids" && Array.isArray(item)) {
        item.forEach((q) => { if (typeof q === "string") { state.queueIds.add(q); } });
      } else { collectQueueIds(item); }
    }
  }
}

function showFindings(report) {
  const list = $("findings");
  list.replaceChildren();
  if (!report || !report.findings || report.findings.length === 0) {
    list.append(el("li", "No findings in " + windowText(report)));
    return;
  }
  for (const f of report.findings) {
    collectQueueIds(f.evidence);
    const item = el("li", null, "finding");
    item.append(el("span", f.severity.toUpperCase() + " ", "severity-" + f.severity));
    const where = [f.kind, f.tenant, f.domain, f.relay && "via " + f.relay,
      f.stage && "stage " + f.stage].filter(Boolean).join(" ");
    item.append(el("strong", where));
    item.append(el("p", f.explanation));
    const evidence = el("p", "Evidence: ");
    f.evidence.forEach((e, i) => {
      if (i > 0) { evidence.append(", "); }
      evidence.append(traceLink(e.queue_id));
    });
    item.append(evidence);
    item.append(el("p", "Fix: " + f.remediation));
    list.append(item);
  }
}

function windowText(report) {
  if (!report || !report.window) { return "the window"; }
  return report.window.since + " .. " + report.window.until;
}

function addToolCall(call) {
  const item = el("li", null, "tool-call");
  item.id = "tool-" + call.id;
  const details = el("details");
  details.append(el("summary", call.name + " " + JSON.stringify(call.arguments)));
  details.append(el("p", "running ...", "tool-status"));
  item.append(details);
  $("tools").append(item);
}

function addToolResult(result) {
  collectQueueIds(result.result);
  const item = $("tool-" + result.id);
  if (!item) { return; }
  const status = item.querySelector(".tool-status");
  status.textContent = result.status + (result.message ? ": " + result.message : "");
  status.className = "tool-status status-" + result.status;
  const pre = el("pre", JSON.stringify(result.result, null, 2).slice(0, 20000));
  item.querySelector("details").append(pre);
  if (result.name === "get_findings" && result.result) { showFindings(result.result); }
}

function finish(answer) {
  collectQueueIds(answer.tool_calls);
  (answer.evidence && answer.evidence.queue_ids || []).forEach(
    (q) => state.queueIds.add(q));
  if (answer.findings) { showFindings(answer.findings); }
  const box = $("answer");
  box.replaceChildren(linkified(answer.answer));
  state.conversationId = answer.conversation_id;
  $("status").textContent = "Answered " + (answer.source === "llm"
    ? "by the model with " + answer.tool_calls.length + " tool call(s)"
    : "with the deterministic findings") + (answer.inconclusive ? " (inconclusive)" : "");
  document.body.dataset.state = "done";
}

const handlers = {
  conversation: (data) => { state.conversationId = data.conversation_id; },
  notice: (data) => { const n = $("notice"); n.hidden = false; n.textContent = data.text; },
  token: (data) => { $("answer").append(data.text); },
  tool_call: addToolCall,
  tool_result: addToolResult,
  findings: showFindings,
  final: finish,
};

function dispatch(block) {
  let kind = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) { kind = line.slice(6).trim(); }
    else if (line.startsWith("data:")) { data.push(line.slice(5).trimStart()); }
  }
  const handler = handlers[kind];
  if (handler && data.length) { handler(JSON.parse(data.join("\n"))); }
}

async function ask(question) {
  document.body.dataset.state = "asking";
  $("answer").replaceChildren();
  $("tools").replaceChildren();
  $("notice").hidden = true;
  $("status").textContent = "Asking ...";
  const response = await fetch("/v1/chat", {
    method: "POST",
    headers: headers({ "Content-Type": "application/json", "Accept": "text/event-stream" }),
    body: JSON.stringify({ question: question, conversation_id: state.conversationId }),
  });
  if (!response.ok) {
    const problem = await response.json();
    $("status").textContent = "Error " + response.status + ": " + problem.detail;
    document.body.dataset.state = "error";
    return;
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) { break; }
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      dispatch(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
    }
  }
}

async function loadFindings() {
  const response = await fetch("/v1/triage", { headers: headers() });
  if (response.ok) { showFindings(await response.json()); }
}

document.addEventListener("DOMContentLoaded", () => {
  $("token").value = sessionStorage.getItem("mailtriage-token") || "";
  $("token").addEventListener("change", () => {
    sessionStorage.setItem("mailtriage-token", token());
    loadFindings();
  });
  $("ask").addEventListener("submit", (event) => {
    event.preventDefault();
    ask($("question").value);
  });
  const params = new URLSearchParams(window.location.search);
  loadFindings().finally(() => {
    // ?q= asks at once: a link can carry a question.
    if (params.get("q")) { $("question").value = params.get("q"); ask(params.get("q")); }
  });
});
