// anyfind web page: plain JavaScript, no build step, no external requests.
"use strict";

const $ = (sel) => document.querySelector(sel);
const TOKEN_KEY = "anyfind.token";
const PAGE = 20;
const ICONS = { text: "i-doc", image: "i-image", audio: "i-audio", video: "i-video" };
const KINDS = { text: "Document", image: "Image", audio: "Audio", video: "Video" };
const TIMED = new Set(["audio", "video"]);

const state = {
  q: "",
  filters: "",
  example: null,      // a File: search by example
  similarTo: null,    // {id, name}: a similar-items list
  relatedTo: null,    // {id, name}: the related panel (links, embeds, similar items)
  unlinked: false,    // the related panel: only what is not linked already
  // One card per note: what the user chose last, else on for a vault (status: resolved
  // links), where it covers a note and its screenshot in the top card 3 times in 4.
  group: localStorage.getItem("anyfind.group") === "1",
  offset: 0,
  all: false,         // also the results under the relevance floor
  last: null,         // the function that loads the next page
  busy: 0,            // request generation, so a slow answer never overwrites a newer one
};

// -- API ------------------------------------------------------------------------------
function authHeaders() {
  const token = localStorage.getItem(TOKEN_KEY);
  return token ? { Authorization: `Bearer ${token}` } : {};
}

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path, options = {}) {
  const resp = await fetch(path, { ...options, headers: { ...authHeaders(), ...(options.headers || {}) } });
  if (!resp.ok) {
    let detail = resp.statusText;
    try {
      const body = await resp.json();
      detail = typeof body.detail === "string" ? body.detail
        : (body.detail || []).map((d) => d.msg).join("; ") || detail;
    } catch { /* not JSON */ }
    throw new ApiError(resp.status, detail);
  }
  return resp.status === 204 ? null : resp.json();
}

async function startSession() {
  // Media elements cannot send the token: trade it for an HttpOnly cookie.
  if (localStorage.getItem(TOKEN_KEY)) {
    try { await api("/api/session", { method: "POST" }); } catch { /* shown on next call */ }
  }
}

// -- formatting -----------------------------------------------------------------------
function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds || 0));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const mm = String(m).padStart(2, "0"), ss = String(r).padStart(2, "0");
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

function baseName(path) {
  const parts = String(path || "").split(/[\\/]/);
  return parts[parts.length - 1] || path;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) {
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
  }
  return node;
}

function icon(id, cls = "icon") {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", cls);
  svg.setAttribute("aria-hidden", "true");
  const use = document.createElementNS("http://www.w3.org/2000/svg", "use");
  use.setAttribute("href", `#${id}`);
  svg.append(use);
  return svg;
}

// Query words for highlighting when the server sends no spans (filters left out).
function queryTerms(q) {
  return (q || "").split(/\s+/)
    .filter((w) => w && !/^-?[a-z]+:/i.test(w))
    .map((w) => w.replace(/[^\p{L}\p{N}]/gu, "").toLowerCase())
    .filter((w) => w.length > 2);
}

function termSpans(text, terms) {
  const spans = [];
  if (!terms.length) return spans;
  const re = /[\p{L}\p{N}]+/gu;
  let m;
  while ((m = re.exec(text))) {
    const word = m[0].toLowerCase();
    if (terms.some((t) => word.startsWith(t) || t.startsWith(word) && word.length > 3)) {
      spans.push([m.index, m.index + m[0].length]);
    }
  }
  return spans;
}

// Text with [start, end) spans wrapped in <mark>; built as DOM nodes, never as HTML.
function highlighted(text, spans) {
  const frag = document.createDocumentFragment();
  let at = 0;
  for (const [start, end] of [...spans].sort((a, b) => a[0] - b[0])) {
    if (start < at || end <= start) continue;
    frag.append(text.slice(at, start), el("mark", { text: text.slice(start, end) }));
    at = end;
  }
  frag.append(text.slice(at));
  return frag;
}

function highlightTerms(text) {
  return highlighted(text, termSpans(text, queryTerms(state.q)));
}

function passage(r) {
  if (r.snippet) {  // the best-matching passage, as the server cut it
    return el("p", { class: "passage" }, highlighted(r.snippet, r.snippet_highlights || []));
  }
  const text = (r.text || "").replace(/\s+/g, " ").trim();
  if (!text) return null;
  let spans = r.highlights && r.highlights.length ? r.highlights : null;
  if (spans) {
    // Server spans index the original text: keep it, whitespace and all.
    return el("p", { class: "passage" }, highlighted(r.text, spans));
  }
  spans = termSpans(text, queryTerms(state.q));
  return el("p", { class: "passage" }, highlighted(text, spans));
}

// -- cards ----------------------------------------------------------------------------
function contentUrl(r) { return `/api/items/${r.item_id}/content`; }

// -- scores ---------------------------------------------------------------------------
// The score is calibrated relevance in [0, 1] (anyfind/search/relevance.py): a bar and a
// word, and each signal's own figures on hover.
function relevanceWord(score) {
  if (score >= 0.8) return "strong";
  if (score >= 0.5) return "good";
  if (score >= 0.2) return "fair";
  return "weak";
}

function signalLines(r) {
  return Object.entries(r.signals || {}).map(([name, s]) => {
    const parts = [];
    if (s.cosine !== undefined) parts.push(`cosine ${s.cosine.toFixed(3)}`);
    if (s.floor !== undefined) parts.push(`floor ${s.floor.toFixed(3)}`);
    if (s.bm25 !== undefined) parts.push(`BM25 ${s.bm25.toFixed(2)}`);
    if (s.rank !== undefined) parts.push(`rank ${s.rank}`);
    return `${name}: ${Number(s.score).toFixed(2)} (${parts.join(", ")})`;
  });
}

function scoreBadge(r) {
  const score = Math.max(0, Math.min(1, Number(r.score) || 0));
  const word = relevanceWord(score);
  const title = [`relevance ${score.toFixed(3)} (${word})`, ...signalLines(r)].join("\n");
  const bar = el("span", { class: "bar" }, el("span", { class: "fill" }));
  bar.firstChild.style.width = `${Math.round(score * 100)}%`;
  return el("span", { class: `score ${word}`, title, "aria-label": title,
                      "data-score": score.toFixed(3) },
    bar, el("span", { class: "label", text: `${word} ${score.toFixed(2)}` }));
}

function card(r) {
  const kind = r.modality in KINDS ? r.modality : "text";
  const name = r.title && kind === "text" ? r.title : baseName(r.path);
  const node = el("article", {
    class: `card ${kind}`, tabindex: "0", "data-item": r.item_id, "data-modality": kind,
    "aria-label": `${KINDS[kind]}: ${baseName(r.path)}`,
  });
  const where = [r.source, r.path].filter(Boolean).join(" · ");
  const body = el("div", { class: "body" },
    el("div", { class: "title-row" },
      el("span", { class: "kind", text: KINDS[kind] }),
      el("span", { class: "title", title: name, text: name }),
      scoreBadge(r)),
    el("div", { class: "where", title: r.path, text: where }));
  for (const n of (r.linked_from || []).slice(0, 2)) {  // the notes it sits in (vaults)
    const where = n.heading ? `${baseName(n.path)} › ${n.heading}` : baseName(n.path);
    const line = el("div", { class: "in-note", title: n.passage || n.path },
      el("span", { class: "label", text: n.kind === "embed" ? "in" : "linked from" }), where);
    body.append(line);
    if (n.passage && n.kind === "embed") {
      body.append(el("p", { class: "passage note-passage" }, highlightTerms(n.passage)));
    }
  }
  const alsoMatching = (r.embeds || []).filter((e) => e.matches);
  if (alsoMatching.length) {
    body.append(el("div", { class: "in-note" }, el("span", { class: "label", text: "embeds" }),
      alsoMatching.slice(0, 4).map((e) => baseName(e.path)).join(", ")));
  }
  if (r.parent) {  // an e-mail attachment: say which e-mail it is in
    body.append(el("div", { class: "where parent", title: r.parent.path,
                            text: `attachment of ${baseName(r.parent.path)} (#${r.parent.id})` }));
  }

  if (kind === "image") node.append(imageMedia(r), body);
  else if (kind === "video") node.append(frameMedia(r), body);
  else node.append(iconMedia(r, kind), body);

  if (kind === "image") {
    const size = r.width && r.height ? `${r.width} × ${r.height}` : null;
    if (r.tags && r.tags.length) {
      body.append(el("div", { class: "tags" }, r.tags.slice(0, 6).map((t) => el("span", { class: "tag", text: t }))));
    }
    if (size) body.append(el("div", { class: "where", text: size }));
    for (const region of (r.regions || []).slice(0, 2)) {  // words read in the image
      body.append(el("p", { class: "passage read" }, el("span", { class: "label", text: "read" }),
        highlighted(region.text, region.highlights || [])));
    }
  } else if (r.moments && r.moments.length) {
    body.append(momentList(node, r));
  } else {
    const p = passage(r);
    if (p) body.append(p);
  }
  if (TIMED.has(kind)) body.append(mediaPlayer(r, kind));

  const actions = el("div", { class: "actions" });
  if (TIMED.has(kind)) {
    actions.append(el("button", {
      type: "button", class: "play", "data-start": r.start ?? 0,
      onclick: () => playFrom(node, r.start ?? 0),
    }, icon("i-play"), `Play from ${clock(r.start)}`));
  }
  if (kind === "image") {
    actions.append(el("button", { type: "button", onclick: () => openLightbox(r) }, icon("i-image"), "View"));
  }
  const href = contentUrl(r) + (r.page ? `#page=${r.page}` : "");
  actions.append(
    el("a", { href, target: "_blank", rel: "noopener" }, icon("i-open"), "Open"),
    el("button", { type: "button", class: "similar", onclick: () => showSimilar(r) }, icon("i-similar"), "Similar"),
    el("button", { type: "button", class: "related", onclick: () => showRelated(r) }, icon("i-similar"), "Related"));
  body.append(actions);
  node.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && e.target === node) {
      e.preventDefault();
      if (kind === "image") openLightbox(r);
      else if (TIMED.has(kind)) playFrom(node, r.start ?? 0);
      else window.open(href, "_blank", "noopener");
    }
  });
  return node;
}

function imageMedia(r) {
  const img = el("img", { src: `/api/items/${r.item_id}/thumbnail`, alt: baseName(r.path), loading: "lazy" });
  img.addEventListener("error", () => img.replaceWith(icon("i-image")), { once: true });
  return el("button", { type: "button", class: "media", title: "View full size", tabindex: "-1",
    onclick: () => openLightbox(r) }, img);
}

function iconMedia(r, kind) {
  const media = el("div", { class: "media" }, icon(ICONS[kind]));
  if (r.page) media.append(el("span", { class: "badge", text: `p. ${r.page}` }));
  if (kind === "audio" && r.start !== null && r.start !== undefined) {
    media.append(el("span", { class: "badge", text: `${clock(r.start)}–${clock(r.end)}` }));
  }
  return media;
}

function frameMedia(r) {
  // The frame shown at the best moment (its own thumbnail), else the video's first.
  const m = (r.moments || [])[0];
  const frame = m && m.frame !== null && m.frame !== undefined ? `?frame=${m.frame}` : "";
  const img = el("img", { src: `/api/items/${r.item_id}/thumbnail${frame}`, alt: baseName(r.path),
                          loading: "lazy" });
  img.addEventListener("error", () => img.replaceWith(icon("i-video")), { once: true });
  const media = el("div", { class: "media" }, img);
  if (r.start !== null && r.start !== undefined) {
    media.append(el("span", { class: "badge", text: `${clock(r.start)}–${clock(r.end)}` }));
  }
  return media;
}

function momentList(cardNode, r) {
  // Each moment: when, the slide's words shown then, what is said then; a click plays it.
  const list = el("ol", { class: "moments" });
  for (const m of r.moments) {
    const parts = [el("span", { class: "when", text: `${clock(m.start)}–${clock(m.end)}` })];
    if (m.shown) parts.push(el("span", { class: "shown" }, el("span", { class: "label", text: "slide" }),
                                 highlightTerms(m.shown)));
    if (m.said) parts.push(el("span", { class: "said" }, el("span", { class: "label", text: "said" }),
                                highlightTerms(m.said)));
    list.append(el("li", {}, el("button", { type: "button", class: "moment", "data-start": m.start,
      title: `Play from ${clock(m.start)}`, onclick: () => playFrom(cardNode, m.start) }, parts)));
  }
  return list;
}

function mediaPlayer(r, kind) {
  // The media fragment starts the player at the moment; Range requests let it seek.
  const start = r.start ?? 0;
  return el(kind === "video" ? "video" : "audio", {
    controls: true, preload: "none", src: `${contentUrl(r)}#t=${start}` });
}

function playFrom(cardNode, start) {
  const audio = cardNode.querySelector("audio, video");
  document.querySelectorAll("audio, video").forEach((a) => { if (a !== audio) a.pause(); });
  const go = () => { audio.currentTime = start; audio.play().catch(() => {}); };
  if (audio.readyState >= 1) go();
  else {
    audio.preload = "auto";
    audio.addEventListener("loadedmetadata", go, { once: true });
    audio.load();
  }
}

// -- rendering ------------------------------------------------------------------------
function showNotice(message, error = false) {
  const n = $("#notice");
  n.textContent = message || "";
  n.classList.toggle("error", error);
  n.hidden = !message;
}

function setHeading(text, back = false) {
  $("#heading").hidden = !text;
  $("#heading-text").textContent = text || "";
  $("#heading-clear").hidden = !back;
}

function loading() {
  $("#welcome").hidden = true;
  $("#more").hidden = true;
  const results = $("#results");
  results.setAttribute("aria-busy", "true");
  results.replaceChildren(...Array.from({ length: 3 }, () => el("div", { class: "skeleton" })));
}

function groupCards(body) {
  // The grouped view: a note's card holds what of it matched (its passages, the media it
  // embeds or links); an item that no note holds stands alone.
  const byId = new Map(body.results.map((r) => [r.item_id, r]));
  return body.groups.map((g) => {
    const members = g.members.map((id) => byId.get(id)).filter(Boolean);
    if (!g.note) return card(members[0]);
    const node = el("section", { class: "group", "data-note": g.note.id,
                                 "aria-label": `Note: ${g.note.title || baseName(g.note.path)}` },
      el("header", { class: "group-head" }, icon("i-doc"),
        el("span", { class: "title", text: g.note.title || baseName(g.note.path) }),
        el("span", { class: "where", title: g.note.path, text: g.note.path })));
    node.append(...members.map(card));
    return node;
  });
}

function render(body, append) {
  const results = $("#results");
  results.removeAttribute("aria-busy");
  const cards = body.groups ? groupCards(body) : body.results.map(card);
  if (append) results.append(...cards);
  else results.replaceChildren(...cards);
  if (!append && !cards.length) {
    const what = state.similarTo ? `items similar to ${state.similarTo.name}`
      : state.example ? state.example.name : `“${state.q}”`;
    results.replaceChildren(el("div", { class: "empty" },
      el("p", {}, "No results for ", el("strong", { text: what }), "."),
      el("p", { text: "Try fewer or other words, another filter, or drop an image or a voice clip here." })));
  }
  $("#more").hidden = body.count < body.k || Boolean(body.groups);
  const floor = $("#floor");
  floor.hidden = !(body.hidden > 0) || state.all;
  $("#floor-text").textContent = body.hidden > 0
    ? `${body.hidden} weaker match${body.hidden === 1 ? "" : "es"} hidden under the relevance floor.` : "";
}

function describe(body) {
  const n = body.offset + body.count;
  const took = `${Math.round(body.took_ms)} ms`;
  if (state.similarTo) return `Similar to ${state.similarTo.name} · ${took}`;
  if (body.groups) return `${body.groups.length} card${body.groups.length === 1 ? "" : "s"} (${n} result${n === 1 ? "" : "s"}) · ${took}`;
  if (body.example === "audio") return `Heard “${body.query || ""}” · ${n} result${n === 1 ? "" : "s"} · ${took}`;
  if (body.example === "image") return `Like ${state.example.name} · ${n} result${n === 1 ? "" : "s"} · ${took}`;
  return `${n} result${n === 1 ? "" : "s"} · ${took}`;
}

async function run(loader, append = false) {
  const generation = ++state.busy;
  if (!append) loading();
  showNotice("");
  try {
    const body = await loader();
    if (generation !== state.busy) return;
    render(body, append);
    setHeading(describe(body), Boolean(state.similarTo));
  } catch (err) {
    if (generation !== state.busy) return;
    $("#results").removeAttribute("aria-busy");
    if (!append) $("#results").replaceChildren();
    if (err.status === 401) {
      showNotice("This server needs an access token.", true);
      openTokenDialog();
    } else {
      showNotice(err.message || "Something went wrong.", true);
    }
  }
}

// -- searching ------------------------------------------------------------------------
function textSearch(offset = 0) {
  const params = new URLSearchParams({ q: state.q, k: PAGE, offset });
  if (state.filters) params.set("filters", state.filters);
  if (state.all) params.set("all", "true");
  if (state.group) params.set("group", "true");
  return api(`/api/search?${params}`);
}

function exampleSearch(offset = 0) {
  const form = new FormData();
  form.append("file", state.example, state.example.name);
  form.append("k", PAGE);
  form.append("offset", offset);
  if (state.filters) form.append("filters", state.filters);
  if (state.all) form.append("all", "true");
  return api("/api/search", { method: "POST", body: form });
}

function similarSearch(offset = 0) {
  return api(`/api/items/${state.similarTo.id}/similar?${new URLSearchParams({ k: PAGE, offset })}`);
}

function search(all = false) {
  state.similarTo = null;
  state.relatedTo = null;
  state.offset = 0;
  state.all = all;  // a new search starts under the floor again
  if (state.example) {
    state.last = exampleSearch;
  } else {
    state.q = $("#q").value.trim();
    if (!state.q) { showWelcome(); return; }
    state.last = textSearch;
  }
  syncUrl();
  run(() => state.last(0));
}

function more() {
  state.offset += PAGE;
  const offset = state.offset;
  run(() => state.last(offset), true);
}

function showSimilar(r) {
  state.similarTo = { id: r.item_id, name: baseName(r.path) };
  state.offset = 0;
  state.last = similarSearch;
  run(() => similarSearch(0));
  window.scrollTo({ top: 0 });
}

// -- related items (links both ways, embeds, then similar items) ------------------------
const IMAGE_PATH = /\.(png|jpe?g|gif|webp|bmp|tiff?|heic)$/i;

function relatedRow(x) {
  const name = baseName(x.path);
  const media = IMAGE_PATH.test(x.path || "")
    ? el("img", { class: "thumb", src: `/api/items/${x.id}/thumbnail`, alt: name, loading: "lazy" })
    : el("span", { class: "thumb" }, icon(ICONS.text));
  const kind = x.score === null ? "linked" : "similar";
  return el("li", { class: `related-row ${kind}`, "data-item": x.id },
    media,
    el("span", { class: "reason", text: x.reason }),
    el("a", { href: `/api/items/${x.id}/content`, target: "_blank", rel: "noopener", title: x.path,
              text: name }),
    el("span", { class: "where", text: x.heading ? `› ${x.heading}` : "" }),
    el("button", { type: "button", class: "ghost small", title: `What relates to ${name}`,
                   onclick: () => showRelated({ item_id: x.id, path: x.path }) }, "Related"));
}

async function showRelated(r) {
  state.relatedTo = { id: r.item_id, name: baseName(r.path) };
  state.similarTo = null;
  const generation = ++state.busy;
  loading();
  showNotice("");
  try {
    const params = new URLSearchParams({ k: 10 });
    if (state.unlinked) params.set("unlinked", "true");
    const body = await api(`/api/items/${r.item_id}/related?${params}`);
    if (generation !== state.busy) return;
    const results = $("#results");
    results.removeAttribute("aria-busy");
    const toggle = el("label", { class: "switch" },
      el("input", { type: "checkbox", id: "unlinked", ...(state.unlinked ? { checked: "" } : {}),
                    onchange: (e) => { state.unlinked = e.target.checked; showRelated(r); } }),
      "Only what it does not link already");
    const list = el("ol", { class: "related-list" }, ...body.related.map(relatedRow));
    results.replaceChildren(el("div", { class: "related-panel" }, toggle,
      body.related.length ? list : el("p", { class: "empty", text: "Nothing related found." })));
    $("#floor").hidden = true;
    setHeading(`Related to ${state.relatedTo.name}`, true);
    window.scrollTo({ top: 0 });
  } catch (err) {
    if (generation !== state.busy) return;
    $("#results").removeAttribute("aria-busy");
    showNotice(err.message || "Something went wrong.", true);
  }
}

function setExample(file) {
  if (!file) return;
  if (!/^(image|audio|video)\//.test(file.type) && file.type) {
    showNotice(`${file.name} is not an image or an audio clip.`, true);
    return;
  }
  state.example = file;
  const thumb = $("#example-thumb");
  if (thumb.src) URL.revokeObjectURL(thumb.src);
  thumb.hidden = !file.type.startsWith("image/");
  if (!thumb.hidden) thumb.src = URL.createObjectURL(file);
  $("#example-name").textContent = file.name;
  $("#example").hidden = false;
  $("#q").value = "";
  $("#q").placeholder = "Searching by example";
  search();
}

function clearExample() {
  state.example = null;
  $("#example").hidden = true;
  $("#file").value = "";
  $("#q").placeholder = "Search documents, photos and recordings…";
  $("#q").focus();
}

function syncUrl() {
  const params = new URLSearchParams();
  if (!state.example && state.q) params.set("q", state.q);
  if (state.filters) params.set("filters", state.filters);
  if (state.group) params.set("group", "1");
  const query = params.toString();
  history.replaceState(null, "", query ? `/?${query}` : "/");
}

async function showWelcome() {
  $("#results").replaceChildren();
  $("#more").hidden = true;
  setHeading("");
  $("#welcome").hidden = false;
  syncUrl();
  try {
    const st = await api("/api/status");
    const m = st.by_modality || {};
    const part = (n, one, many) => `${n || 0} ${(n || 0) === 1 ? one : many}`;
    $("#stats").textContent = `${part(st.ok, "item", "items")} indexed · ` +
      `${part(m.text, "document", "documents")} · ${part(m.image, "image", "images")} · ` +
      `${part(m.audio, "recording", "recordings")}`;
  } catch (err) {
    if (err.status === 401) openTokenDialog();
  }
}

// -- dialogs --------------------------------------------------------------------------
function openLightbox(r) {
  const img = $("#lightbox-img");
  img.src = contentUrl(r);
  img.alt = baseName(r.path);
  const frame = $("#lightbox-frame");
  frame.querySelectorAll(".region").forEach((n) => n.remove());
  for (const region of r.regions || []) {  // boxes are fractions of the image: % of the frame
    const [x0, y0, x1, y1] = region.box;
    const box = el("div", { class: "region", title: region.text });
    Object.assign(box.style, { left: `${x0 * 100}%`, top: `${y0 * 100}%`,
      width: `${(x1 - x0) * 100}%`, height: `${(y1 - y0) * 100}%` });
    frame.append(box);
  }
  $("#lightbox-caption").textContent = [baseName(r.path), r.width && `${r.width} × ${r.height}`,
    (r.tags || []).slice(0, 3).join(", ")].filter(Boolean).join(" · ");
  $("#lightbox").showModal();
}

function openTokenDialog() {
  const dialog = $("#token-dialog");
  if (dialog.open) return;
  $("#token-input").value = localStorage.getItem(TOKEN_KEY) || "";
  dialog.showModal();
}

// -- keyboard -------------------------------------------------------------------------
function cards() { return [...document.querySelectorAll("#results .card")]; }

function onKey(e) {
  const typing = e.target.matches("input, textarea, select, [contenteditable]");
  if (e.key === "/" && !typing && !document.querySelector("dialog[open]")) {
    e.preventDefault();
    $("#q").focus();
    $("#q").select();
    return;
  }
  if (e.key === "Escape" && e.target === $("#q") && state.example) {
    clearExample();
    return;
  }
  if (e.key !== "ArrowDown" && e.key !== "ArrowUp") return;
  const list = cards();
  if (!list.length) return;
  const current = list.indexOf(e.target);
  if (e.target === $("#q") && e.key === "ArrowDown") {
    e.preventDefault();
    list[0].focus();
  } else if (current >= 0) {
    e.preventDefault();
    const next = current + (e.key === "ArrowDown" ? 1 : -1);
    if (next < 0) $("#q").focus();
    else if (next < list.length) list[next].focus();
  }
}

// -- drag and drop --------------------------------------------------------------------
function setupDrop() {
  const zone = $("#dropzone");
  let depth = 0;
  const hasFiles = (e) => [...(e.dataTransfer?.types || [])].includes("Files");
  window.addEventListener("dragenter", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    depth += 1;
    zone.hidden = false;
  });
  window.addEventListener("dragover", (e) => { if (hasFiles(e)) e.preventDefault(); });
  window.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (!depth) zone.hidden = true;
  });
  window.addEventListener("drop", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    depth = 0;
    zone.hidden = true;
    setExample(e.dataTransfer.files[0]);
  });
}

// -- start ----------------------------------------------------------------------------
function init() {
  $("#search-form").addEventListener("submit", (e) => { e.preventDefault(); search(); });
  $("#q").addEventListener("input", () => {
    if (state.example && $("#q").value) clearExample();
  });
  $("#pick").addEventListener("click", () => $("#file").click());
  $("#file").addEventListener("change", (e) => setExample(e.target.files[0]));
  $("#example-clear").addEventListener("click", clearExample);
  $("#more").addEventListener("click", more);
  $("#floor-show").addEventListener("click", () => search(true));
  $("#group").addEventListener("change", (e) => {
    state.group = e.target.checked;
    localStorage.setItem("anyfind.group", state.group ? "1" : "0");
    if (!state.example && $("#q").value.trim()) search(); else syncUrl();
  });
  $("#heading-clear").addEventListener("click", () => {
    state.similarTo = null;
    state.relatedTo = null;
    if (state.example || state.q) search(); else showWelcome();
  });
  for (const chip of document.querySelectorAll("#chips [role=radio]")) {
    chip.addEventListener("click", () => {
      for (const other of document.querySelectorAll("#chips [role=radio]")) {
        other.setAttribute("aria-checked", String(other === chip));
      }
      state.filters = chip.dataset.filter;
      if (state.example || $("#q").value.trim()) search(); else syncUrl();
    });
  }
  $("#token-button").addEventListener("click", openTokenDialog);
  $("#token-form").addEventListener("submit", async () => {
    const token = $("#token-input").value.trim();
    if (token) localStorage.setItem(TOKEN_KEY, token); else localStorage.removeItem(TOKEN_KEY);
    await startSession();
    if (state.example || state.q) search(); else showWelcome();
  });
  $("#token-forget").addEventListener("click", async () => {
    localStorage.removeItem(TOKEN_KEY);
    try { await fetch("/api/session", { method: "DELETE" }); } catch { /* offline */ }
    $("#token-dialog").close();
  });
  $("#lightbox").addEventListener("click", (e) => { if (e.target === $("#lightbox")) $("#lightbox").close(); });
  document.addEventListener("keydown", onKey);
  setupDrop();

  const params = new URLSearchParams(location.search);
  state.filters = params.get("filters") || "";
  if (params.has("group")) state.group = params.get("group") === "1";
  $("#group").checked = state.group;
  for (const chip of document.querySelectorAll("#chips [role=radio]")) {
    chip.setAttribute("aria-checked", String(chip.dataset.filter === state.filters));
  }
  startSession().then(async () => {
    if (localStorage.getItem("anyfind.group") === null && !params.has("group")) {
      try {  // never chosen: on for a vault (some links resolve), off elsewhere
        const st = await api("/api/status");
        state.group = ((st.relations || {}).resolved || 0) > 0;
        $("#group").checked = state.group;
      } catch { /* the search below says what is wrong */ }
    }
    const q = params.get("q");
    if (q) { $("#q").value = q; search(); } else showWelcome();
  });
  $("#q").focus();
}

document.addEventListener("DOMContentLoaded", init);
