// tools/html/report.js: the script of memlens's HTML report, inlined into every page through
// include/memlens/view/html_assets.hpp (regenerate it with the memlens_embed_assets target). It
// reads the JSON that include/memlens/view/html.hpp writes into #memlens-data; the fields are
// described there, beside the code that writes them.
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("memlens-data").textContent);
  const $ = (id) => document.getElementById(id);

  function bytes(n) {
    if (Math.abs(n) < 1024) return Math.round(n) + " B";
    const units = ["KiB", "MiB", "GiB", "TiB"];
    let i = -1;
    do { n /= 1024; ++i; } while (Math.abs(n) >= 1024 && i < units.length - 1);
    return n.toFixed(1) + " " + units[i];
  }
  // Digit groups by hand: toLocaleString costs an Intl set-up that shows in the load time.
  function count(n) {
    const digits = String(Math.round(Math.abs(n)));
    let out = "";
    for (let i = 0; i < digits.length; ++i) {
      if (i && (digits.length - i) % 3 === 0) out += ",";
      out += digits[i];
    }
    return (n < 0 ? "-" : "") + out;
  }
  const share = (part, whole) => (whole > 0 ? (100 * part / whole).toFixed(1) : "0.0") + "%";
  // "1 frame", "2 frames".
  const counted = (n, one, many) => count(n) + " " + (Math.round(n) === 1 ? one : many);
  function element(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }

  // ---- header ----
  const totals = data.totals;
  const liveBytes = data.live.bytes;
  const run = data.run;
  $("meta").textContent = [
    run.unix_time_ms ? new Date(run.unix_time_ms).toISOString() : "",
    run.pid ? "pid " + run.pid : "", run.mode ? "mode " + run.mode : "", run.build, run.command_line,
  ].filter(Boolean).join(" \u00b7 ");
  // Byte figures are rounded for reading; the exact figure is the title, shown on hover.
  const exactBytes = (n) => count(n) + (Math.round(Math.abs(n)) === 1 ? " byte" : " bytes");
  const about = data.estimated ? "\u2248 " : "";
  const cards = [
    { figure: "current", value: bytes(totals.current), exact: exactBytes(totals.current), what: "live now, every domain" },
    { figure: "peak", value: bytes(totals.peak), exact: exactBytes(totals.peak), what: "peak" },
    { figure: "total", value: bytes(totals.total), exact: exactBytes(totals.total), what: "allocated in total" },
    { figure: "allocs", value: count(totals.allocs), what: "allocations" },
    { figure: "frees", value: count(totals.frees), what: "frees" },
    { figure: "live", value: about + bytes(liveBytes), exact: about + exactBytes(liveBytes),
      what: "in the " + count(data.live.count) + " live allocations recorded" },
  ];
  if (data.peak.kept) {
    cards.push({ figure: "at_peak", value: bytes(data.peak.bytes), exact: exactBytes(data.peak.bytes),
      what: "in the " + count(data.peak.count) + " allocations recorded at the peak" });
  }
  for (const card of cards) {
    const c = element("div", undefined, "card");
    c.dataset.figure = card.figure;
    const value = element("b", card.value);
    if (card.exact) value.title = card.exact;
    c.append(value, element("span", card.what));
    $("cards").append(c);
  }

  // ---- recommendations ----
  if (data.recommendations.length === 0) {
    $("advice").append(element("li", "No figure in this snapshot crosses a threshold for advice."));
  }
  for (const r of data.recommendations) {
    const li = element("li");
    li.dataset.rule = r.rule;
    li.append(element("span", r.figure, "figure"), document.createTextNode(" \u2014 " + r.advice));
    $("advice").append(li);
  }

  // ---- names ----
  // Each name is the first shared_prefix[n] characters of the one before it, then suffix[n].
  const names = data.names;
  const labels = new Array(names.suffix.length);
  {
    let previous = "";
    for (let i = 0; i < labels.length; ++i) {
      previous = previous.slice(0, names.shared_prefix[i]) + names.suffix[i];
      labels[i] = previous;
    }
  }
  function place(n) {
    const file = names.file[n], line = names.line[n];
    return file < 0 ? "" : names.files[file] + (line ? ":" + line : "");
  }
  // The qualified name without return type, parameters and template arguments
  // ("std::vector<>::push_back"), for boxes and tables; the whole name is their title. Computed
  // only for the names that are drawn.
  const briefs = new Map();
  // Where an operator's name ends, for `i` at the word "operator": "()", "[]", a symbol run
  // ("<<"), or a word ("new", "delete[]", "bool").
  function operatorEnd(text, i) {
    let j = i + 8;
    if (text.startsWith("()", j) || text.startsWith("[]", j)) return j + 2;
    if (text[j] === " ") {
      ++j;
      while (j < text.length && /\w/.test(text[j])) ++j;
      return text.startsWith("[]", j) ? j + 2 : j;
    }
    while (j < text.length && "<>=!+-*/%^&|~,".includes(text[j])) ++j;
    return j;
  }
  function isOperator(text, i) {
    return text.startsWith("operator", i) && (i === 0 || !/\w/.test(text[i - 1])) && !/\w/.test(text[i + 8] || "");
  }
  function briefName(n) {
    let b = briefs.get(n);
    if (b !== undefined) return b;
    const text = labels[n].split("(anonymous namespace)").join("{anonymous}");
    // The qualified name: lambdas ("{lambda(int)#1}") and operators are parts of it.
    let depth = 0, start = 0, end = text.length;
    for (let i = 0; i < text.length; ++i) {
      const c = text[i];
      if (depth === 0 && isOperator(text, i)) {
        let j = operatorEnd(text, i);
        if (text.startsWith(" <", j)) ++j;  // "operator<< <char>"
        i = j - 1;
      } else if (c === "<" || c === "{" || (c === "(" && depth > 0)) ++depth;
      else if (c === ">" || c === "}" || (c === ")" && depth > 0)) --depth;
      else if (depth === 0 && c === "(" && i > 0) { end = i; break; }
      else if (depth === 0 && c === " ") start = i + 1;
    }
    const name = start < end ? text.slice(start, end) : text;
    // Then every template argument list collapsed.
    b = "";
    depth = 0;
    for (let i = 0; i < name.length; ++i) {
      const c = name[i];
      if (isOperator(name, i)) {
        const j = operatorEnd(name, i);
        if (depth === 0) b += name.slice(i, j);
        i = j - 1;
      } else if (c === "<") {
        if (depth++ === 0) b += "<>";
      } else if (c === ">") {
        --depth;
      } else if (depth === 0) {
        b += c;
      }
    }
    briefs.set(n, b);
    return b;
  }

  // ---- flamegraph: one tree over every stack, outermost frame at the top, weighed by kind ----
  // Stacks come sorted, each as the number of frames it shares with the one before and the new
  // ones after: the tree grows along one path, with no lookup. Each stack ends at a node; a
  // kind's weights are put on those nodes and summed up the tree, so switching kinds rebuilds
  // nothing.
  const stacks = data.stacks;
  let capacity = 1, longest = 1;
  for (let s = 0; s < stacks.added.length; ++s) {
    capacity += stacks.added[s];
    longest = Math.max(longest, stacks.shared[s] + stacks.added[s]);
  }
  const parent = new Int32Array(capacity), nameOf = new Int32Array(capacity), depth = new Int32Array(capacity);
  const weight = new Float64Array(capacity), blocks = new Float64Array(capacity);
  const stackEnd = new Int32Array(stacks.added.length);
  parent[0] = -1;
  nameOf[0] = -1;
  let nodes = 1;
  {
    const path = new Int32Array(longest + 1);
    const frames = stacks.frames;
    let fresh = 0;  // -1 in the frames is the next name not seen before
    for (let s = 0, i = 0; s < stacks.added.length; ++s) {
      const added = stacks.added[s];
      let length = stacks.shared[s] + 1;
      for (let k = 0; k < added; ++k) {
        const child = nodes++, up = path[length - 1];
        parent[child] = up;
        nameOf[child] = frames[i + k] < 0 ? fresh++ : frames[i + k];
        depth[child] = depth[up] + 1;
        path[length++] = child;
      }
      i += added;
      stackEnd[s] = path[length - 1];
    }
  }
  // What each kind shows, in the order of the control. `noun` completes "share of ...".
  const kinds = [
    { key: "peak", button: "Peak", title: "Bytes at the peak by call stack", noun: "bytes at the peak",
      note: "What was alive at the process's highest peak: the copy of the live table kept there" +
        (data.peak.kept ? " (taken at " + bytes(data.peak.current) + " live, every domain)." : ".") },
    { key: "live", button: "Leaks (live)", title: "Live bytes by call stack", noun: "live bytes",
      note: "What is alive in this snapshot: at exit, what leaked." },
    { key: "allocated", button: "Allocations", title: "Bytes allocated by call stack", noun: "bytes allocated",
      note: "Every byte allocated at each stack up to the snapshot, freed or not." },
    { key: "temporaries", button: "Temporaries", title: "Temporary allocations by call stack",
      noun: "temporary allocations", counts: true,
      note: "Allocations their own thread freed before making " + count(data.temporary_window) +
        " more; width is their number (their bytes are not kept)." },
  ].filter((k) => stacks.weights[k.key]);
  let kind = kinds[0];
  const estimatedKind = () => data.estimated && (kind.key === "live" || kind.key === "allocated");
  function weigh() {
    const w = stacks.weights[kind.key];
    weight.fill(0);
    blocks.fill(0);
    for (let s = 0; s < stackEnd.length; ++s) {
      weight[stackEnd[s]] += w.bytes ? w.bytes[s] : w.count[s];
      blocks[stackEnd[s]] += w.count[s];
    }
    // Children are numbered after their parents: one backward pass sums every subtree.
    for (let v = nodes - 1; v > 0; --v) {
      weight[parent[v]] += weight[v];
      blocks[parent[v]] += blocks[v];
    }
  }
  // Children as one array with offsets per node.
  const firstChild = new Int32Array(nodes + 1);
  for (let v = 1; v < nodes; ++v) firstChild[parent[v] + 1]++;
  for (let v = 0; v < nodes; ++v) firstChild[v + 1] += firstChild[v];
  const children = new Int32Array(Math.max(nodes - 1, 1));
  {
    const fill = firstChild.slice(0, nodes);
    for (let v = 1; v < nodes; ++v) children[fill[parent[v]]++] = v;
  }
  const label = (v) => (v === 0 ? "all" : labels[nameOf[v]]);
  const brief = (v) => (v === 0 ? "all" : briefName(nameOf[v]));

  const canvas = $("flame"), context = canvas.getContext("2d");
  const rowHeight = 18, minWidth = 0.5;
  let zoom = 0, matches = null, hover = -1;
  let shown = [];  // what the last paint drew: [node, x, width, row]
  const hues = new Map();
  function colour(v) {
    const n = nameOf[v];
    let h = hues.get(n);
    if (h === undefined) {
      const text = label(v);
      let x = 2166136261;
      for (let i = 0; i < text.length; ++i) x = Math.imul(x ^ text.charCodeAt(i), 16777619);
      h = (x >>> 0) % 1000 / 1000;
      hues.set(n, h);
    }
    return "hsl(" + (10 + 40 * h).toFixed(0) + "," + (70 + 20 * h).toFixed(0) + "%," + (62 + 10 * h).toFixed(0) + "%)";
  }
  function nameMatches(v) { return matches !== null && v > 0 && matches[nameOf[v]] === 1; }

  function layout(width) {
    const out = [];
    const path = [];
    for (let v = zoom; v > 0; v = parent[v]) path.push(v);
    path.push(0);
    path.reverse();
    for (let row = 0; row < path.length - 1; ++row) out.push([path[row], 0, width, row]);
    // Only frames at least half a pixel wide are laid out, largest first: the work follows
    // what is visible, whatever the size of the tree.
    const stack = [[zoom, 0, width, path.length - 1]];
    const visible = [];
    while (stack.length) {
      const [v, x, w, row] = stack.pop();
      out.push([v, x, w, row]);
      const scale = weight[v] > 0 ? w / weight[v] : 0;
      visible.length = 0;
      for (let i = firstChild[v], end = firstChild[v + 1]; i < end; ++i) {
        if (weight[children[i]] * scale >= minWidth) visible.push(children[i]);
      }
      visible.sort((a, b) => weight[b] - weight[a]);
      let at = x;
      for (const c of visible) {
        const cw = weight[c] * scale;
        stack.push([c, at, cw, row + 1]);
        at += cw;
      }
    }
    return out;
  }

  function paint() {
    const width = canvas.parentElement.clientWidth;
    shown = layout(width);
    let rows = 0;
    for (const r of shown) rows = Math.max(rows, r[3] + 1);
    const ratio = window.devicePixelRatio || 1;
    canvas.style.height = rows * rowHeight + "px";
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(rows * rowHeight * ratio);
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    context.font = "12px ui-monospace, SFMono-Regular, Menlo, monospace";
    context.textBaseline = "middle";
    const charWidth = context.measureText("M").width || 7;
    const zoomRow = depth[zoom];
    for (const [v, x, w, row] of shown) {
      const y = row * rowHeight;
      context.fillStyle = nameMatches(v) ? "#d946ef" : row < zoomRow ? "#d5d9e2" : colour(v);
      context.fillRect(x, y, Math.max(w - 1, 0.5), rowHeight - 1);
      if (v === hover) {
        context.strokeStyle = "#1d2330";
        context.strokeRect(x + 0.5, y + 0.5, Math.max(w - 2, 0.5), rowHeight - 2);
      }
      const fit = Math.floor((w - 6) / charWidth);
      if (fit >= 3) {
        let text = brief(v);
        if (text.length > fit) text = text.slice(0, fit - 1) + "\u2026";
        context.fillStyle = "#1d2330";
        context.fillText(text, x + 3, y + rowHeight / 2);
      }
    }
    crumbs();
  }

  function at(event) {
    const box = canvas.getBoundingClientRect();
    const x = event.clientX - box.left, row = Math.floor((event.clientY - box.top) / rowHeight);
    for (const [v, left, w, r] of shown) {
      if (r === row && x >= left && x < left + w) return v;
    }
    return -1;
  }

  function crumbs() {
    const box = $("crumbs");
    box.textContent = "";
    const path = [];
    for (let v = zoom; v >= 0; v = parent[v]) path.push(v);
    path.reverse();
    path.forEach((v, i) => {
      if (i) box.append(element("span", "\u203a", "sep"));
      const a = element("a", brief(v));
      a.title = label(v);
      a.addEventListener("click", () => zoomTo(v));
      box.append(a);
    });
    $("reset").disabled = zoom === 0;
  }

  function zoomTo(v) {
    zoom = v;
    hover = -1;
    paint();
  }

  const tip = $("tip");
  canvas.addEventListener("mousemove", (event) => {
    const v = at(event);
    if (v !== hover) {
      hover = v;
      paint();
    }
    if (v < 0) {
      tip.style.display = "none";
      return;
    }
    const spot = v > 0 ? place(nameOf[v]) : "";
    tip.textContent = "";
    tip.append(element("div", label(v)));
    if (spot) tip.append(element("div", spot));
    const amount = kind.counts ? counted(blocks[v], "temporary allocation", "temporary allocations")
      : bytes(weight[v]) + " in " + counted(blocks[v], "allocation", "allocations");
    tip.append(element("div", (estimatedKind() ? "\u2248 " : "") + amount + " \u00b7 " + share(weight[v], weight[0]) +
      " of " + kind.noun + (zoom > 0 ? " \u00b7 " + share(weight[v], weight[zoom]) + " of the zoomed frame" : "")));
    tip.style.display = "block";
    const left = Math.min(event.clientX + 14, window.innerWidth - tip.offsetWidth - 8);
    tip.style.left = Math.max(left, 4) + "px";
    tip.style.top = event.clientY + 16 + "px";
  });
  canvas.addEventListener("mouseleave", () => {
    tip.style.display = "none";
    if (hover >= 0) {
      hover = -1;
      paint();
    }
  });
  canvas.addEventListener("click", (event) => {
    const v = at(event);
    if (v >= 0) zoomTo(v);
  });
  $("reset").addEventListener("click", () => zoomTo(0));
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && zoom !== 0) zoomTo(parent[zoom] < 0 ? 0 : parent[zoom]);
  });

  function search() {
    const query = $("search").value.trim().toLowerCase();
    if (!query) {
      matches = null;
      $("matched").textContent = "";
      paint();
      return;
    }
    matches = new Uint8Array(labels.length);
    for (let i = 0; i < labels.length; ++i) {
      if (labels[i].toLowerCase().includes(query)) matches[i] = 1;
    }
    // A matching frame counts once with everything under it: nested matches are not added twice.
    let matched = 0, frames = 0;
    const stack = [0];
    while (stack.length) {
      const v = stack.pop();
      if (nameMatches(v)) {
        matched += weight[v];
        ++frames;
        continue;
      }
      const from = firstChild[v], to = firstChild[v + 1];
      for (let i = from; i < to; ++i) stack.push(children[i]);
    }
    $("matched").textContent = frames === 0 ? "no frame matches"
      : "matched: " + share(matched, weight[0]) + " of " + kind.noun + " (" +
        (kind.counts ? count(matched) : bytes(matched)) + ")";
    paint();
  }
  $("search").addEventListener("input", search);
  window.addEventListener("resize", paint);

  // The control that switches kinds: one button per kind the snapshot has; the zoom is kept
  // when the zoomed frame still holds something.
  function show(next) {
    kind = next;
    weigh();
    if (weight[zoom] <= 0) zoom = 0;
    hover = -1;
    $("flame-title").textContent = kind.title;
    $("kind-note").textContent = kind.note + (weight[0] > 0 ? "" : " Nothing of this kind in this snapshot.");
    for (const b of $("kinds").children) b.setAttribute("aria-pressed", String(b.dataset.kind === kind.key));
    if ($("search").value.trim()) search();
    else paint();
  }
  for (const k of kinds) {
    const b = element("button", k.button);
    b.type = "button";
    b.dataset.kind = k.key;
    b.addEventListener("click", () => show(k));
    $("kinds").append(b);
  }
  $("kinds").hidden = kinds.length < 2;

  // ---- memory over time ----
  function plot() {
    const points = data.timeline;
    if (points.length === 0) return;
    $("timeline-section").hidden = false;
    const ns = "http://www.w3.org/2000/svg";
    const W = 900, H = 280, L = 72, R = 16, T = 16, B = 34;
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 " + W + " " + H);
    svg.setAttribute("width", "100%");
    svg.style.maxWidth = W + "px";
    const t0 = points[0].seconds, t1 = Math.max(points[points.length - 1].seconds, t0 + 1e-9);
    let top = 1;
    for (const p of points) top = Math.max(top, p.current, p.peak, p.rss);
    // A process monitor's timeline has the resident set beside the tracked bytes: the gap is
    // what memlens does not track (allocator caches, fragmentation, untracked allocators).
    const withRss = points.some((p) => p.rss > 0);
    const x = (t) => L + (W - L - R) * (t - t0) / (t1 - t0);
    const y = (b) => T + (H - T - B) * (1 - b / top);
    function add(tag, attrs, text) {
      const e = document.createElementNS(ns, tag);
      for (const k in attrs) e.setAttribute(k, attrs[k]);
      if (text !== undefined) e.textContent = text;
      svg.append(e);
      return e;
    }
    for (let i = 0; i <= 4; ++i) {
      const b = top * i / 4, yy = y(b);
      add("line", { x1: L, x2: W - R, y1: yy, y2: yy, stroke: "#e6e9ef" });
      add("text", { x: L - 6, y: yy + 4, "text-anchor": "end" }, bytes(b));
      const t = t0 + (t1 - t0) * i / 4;
      const decimals = Math.min(6, Math.max(0, Math.ceil(-Math.log10((t1 - t0) / 4))));
      add("text", { x: x(t), y: H - 14, "text-anchor": "middle" }, t.toFixed(decimals) + " s");
    }
    const line = (field) => points.map((p) => x(p.seconds).toFixed(1) + "," + y(p[field]).toFixed(1)).join(" ");
    add("polyline", { points: line("peak"), fill: "none", stroke: "#e07a2f", "stroke-width": 1.5, "stroke-dasharray": "5 3" });
    if (withRss) {
      const read = points.filter((p) => p.rss > 0);
      add("polyline", { points: read.map((p) => x(p.seconds).toFixed(1) + "," + y(p.rss).toFixed(1)).join(" "),
        fill: "none", stroke: "#2e9e5b", "stroke-width": 1.5 });
    }
    add("polyline", { points: line("current"), fill: "none", stroke: "#2f6fdf", "stroke-width": 2 });
    // Labels mark what the program was doing; crowded ones keep their marker and a hover title.
    let lastLabelX = -1e9;
    for (const p of points) {
      if (!p.label) continue;
      const px = x(p.seconds);
      const dot = add("circle", { cx: px, cy: y(p.current), r: 3, fill: "#2f6fdf" });
      const title = document.createElementNS(ns, "title");
      title.textContent = p.label + ": " + bytes(p.current) + " live, peak " + bytes(p.peak) + " at " + p.seconds.toFixed(3) + " s";
      dot.append(title);
      if (px - lastLabelX > 70) {
        const right = px > W - R - 90;
        add("text", { x: right ? px - 4 : px + 4, y: Math.max(y(p.current) - 6, T + 8), "text-anchor": right ? "end" : "start" }, p.label);
        lastLabelX = px;
      }
    }
    add("text", { x: L, y: H - 2 }, "\u2014 current (live bytes)");
    add("text", { x: L + 170, y: H - 2, fill: "#e07a2f" }, "- - peak");
    if (withRss) add("text", { x: L + 250, y: H - 2, fill: "#2e9e5b" }, "\u2014 resident (RSS)");
    $("timeline").append(svg);
  }

  // ---- tables ----
  // The frames are listed when the row is opened, not before: most rows never are.
  function stackList(frames) {
    const d = element("details");
    d.append(element("summary", counted(frames.length, "frame", "frames")));
    d.addEventListener("toggle", () => {
      if (!d.open || d.childElementCount > 1) return;
      const list = element("ol");
      list.start = 0;
      for (const f of frames) {
        const spot = place(f);
        list.append(element("li", labels[f] + (spot ? " at " + spot : "")));
      }
      d.append(list);
    });
    return d;
  }
  // columns: { heading, field, kind }: the row's `field` shown as `kind`, one of "name", "text",
  // "bytes", "count", "signed" (bytes with a sign), "share" (of the live bytes), "seconds" (shown
  // in milliseconds) or "stack".
  // `empty` says why a table has no rows.
  function table(id, columns, rows, all, empty) {
    const box = $(id);
    if (rows.length === 0) {
      box.append(element("p", empty || "Nothing recorded.", "note"));
      return;
    }
    const t = element("table"), head = element("tr"), body = element("tbody");
    const numeric = (kind) => kind !== "name" && kind !== "stack" && kind !== "text";
    for (const { heading, field, kind } of columns) {
      const th = element("th", heading, numeric(kind) ? "n" : "");
      th.addEventListener("click", () => {
        const down = th.dataset.order !== "down";
        th.dataset.order = down ? "down" : "up";
        rows.sort((a, b) => {
          const p = kind === "stack" ? a[field].length : a[field], q = kind === "stack" ? b[field].length : b[field];
          return (p < q ? -1 : p > q ? 1 : 0) * (down === numeric(kind) ? -1 : 1);
        });
        fill();
      });
      head.append(th);
    }
    // A few rows at first keep the page quick to lay out; the rest are a click away.
    let limit = Math.min(rows.length, 25);
    function fill() {
      body.textContent = "";
      for (const row of rows.slice(0, limit)) {
        const tr = element("tr");
        for (const { field, kind } of columns) {
          const v = row[field];
          if (kind === "stack") {
            const td = element("td");
            td.append(stackList(v));
            tr.append(td);
          } else if (kind === "bytes") {
            const td = element("td", bytes(v), "n");
            td.title = exactBytes(v);
            tr.append(td);
          } else if (kind === "count") tr.append(element("td", count(v), "n"));
          else if (kind === "share") tr.append(element("td", share(v, liveBytes), "n"));
          else if (kind === "seconds") tr.append(element("td", (v * 1000).toFixed(1) + " ms", "n"));
          else if (kind === "signed") {
            const td = element("td", (v > 0 ? "+" : v < 0 ? "\u2212" : "") + bytes(Math.abs(v)), "n");
            td.title = (v > 0 ? "+" : v < 0 ? "\u2212" : "") + exactBytes(Math.abs(v));
            tr.append(td);
          } else tr.append(element("td", v, "name"));
        }
        body.append(tr);
      }
    }
    const thead = element("thead");
    thead.append(head);
    t.append(thead, body);
    fill();
    box.append(t);
    if (limit < rows.length) {
      const more = element("button", "Show all " + count(rows.length) + " rows");
      more.type = "button";
      more.addEventListener("click", () => {
        limit = rows.length;
        fill();
        more.remove();
      });
      box.append(more);
    }
    if (all > rows.length) box.append(element("p", "The largest " + count(rows.length) + " of " + count(all) + " are listed.", "note"));
  }

  const column = (heading, field, kind) => ({ heading, field, kind });
  table("sites", [column("site (first frame outside the standard library)", "name", "name"),
    column("live bytes", "bytes", "bytes"), column("allocations", "count", "count"), column("share", "bytes", "share")],
  data.sites.slice(), data.site_count);
  table("live", [column("site", "site", "name"), column("domain", "domain", "text"), column("live bytes", "bytes", "bytes"),
    column("allocations", "count", "count"), column("share", "bytes", "share"), column("stack", "frames", "stack")],
  data.live_stacks.slice(), data.live_stack_count);
  if (data.suppressed.length > 0) {
    $("suppressed-section").hidden = false;
    table("suppressed", [column("rule", "rule", "text"), column("site", "site", "name"), column("domain", "domain", "text"),
      column("live bytes", "bytes", "bytes"), column("blocks", "blocks", "count"), column("stack", "frames", "stack")],
    data.suppressed.slice(), data.suppressed_count);
  }
  // Leak kinds, when classify_leaks() classified the snapshot's blocks: memcheck's summary, the
  // sites of each kind, and what keeps the largest still-reachable sites alive.
  if (data.leak_kinds.classified) {
    const leaks = data.leak_kinds;
    $("leak-kinds-section").hidden = false;
    table("leak-summary", [column("kind", "kind", "text"), column("bytes", "bytes", "bytes"),
      column("blocks", "blocks", "count")], leaks.summary.slice(), leaks.summary.length);
    table("leak-sites", [column("kind", "kind", "text"), column("site", "site", "name"), column("domain", "domain", "text"),
      column("bytes", "bytes", "bytes"), column("blocks", "blocks", "count"), column("suppressed by", "suppressed_by", "text"),
      column("stack", "frames", "stack")], leaks.sites.slice(), leaks.site_count);
    const rootText = (c) => c.root === "global" ? "root: " + c.name
      : c.root === "stack" ? "root: the stack of thread " + c.thread + " at " + c.address
        : c.root === "registers" ? "root: a register of thread " + c.thread
          : c.root === "tls" ? "root: the static TLS or thread control block of thread " + c.thread + " at " + c.address
            : c.root === "none" ? "nothing: no root and no other block points at it" : "... (followed no further)";
    if (leaks.backrefs.length === 0) $("backrefs").append(element("p", "No chain was kept.", "note"));
    for (const chain of leaks.backrefs) {
      const list = element("ol", "", "chain");
      chain.links.forEach((l, i) => {
        const item = element("li", (i === 0 ? "block " : "\u2190 at offset " + count(l.offset) + " of block ") + l.address +
          " (" + exactBytes(l.size) + ", " + l.kind + "), from " + l.site);
        item.dataset.address = l.address;
        item.dataset.size = l.size;
        item.dataset.offset = l.offset;
        list.append(item);
      });
      const root = element("li", "\u2190 " + rootText(chain), "root");
      root.dataset.root = chain.root;
      list.append(root);
      $("backrefs").append(list);
    }
  }
  table("peak", [column("site", "site", "name"), column("bytes at the peak", "bytes", "bytes"),
    column("allocations", "count", "count"), column("stack", "frames", "stack")],
  data.peak_stacks.slice(), data.peak_stack_count,
  data.peak.kept ? "The copy kept at the peak holds no recorded allocation."
    : "No copy of the live table was kept at the peak: sites mode keeps one with MEMLENS_CAPTURE_PEAK=1, " +
      "on by default when MEMLENS_OUTPUT is set.");
  // Site records exist only where sites were recorded: no temporary there is a finding.
  const sitesRecorded = stacks.weights.allocated !== null;
  table("temporaries", [column("site", "site", "name"), column("temporary", "temporaries", "count"),
    column("allocations", "allocs", "count"), column("bytes allocated", "bytes", "bytes"), column("stack", "frames", "stack")],
  data.temporaries.slice(), data.temporary_count,
  data.run.mode === "sampled" ? "Temporary allocations are not counted in sampled mode."
    : sitesRecorded ? "No allocation was freed by its own thread within " + count(data.temporary_window) +
      " further allocations, up to this snapshot."
      : "No allocation site was recorded: MEMLENS_MODE=sites counts temporary allocations.");
  table("scopes", [column("scope", "name", "name"), column("site", "place", "text"), column("calls", "calls", "count"),
    column("allocated", "allocated", "bytes"), column("allocations", "allocs", "count"), column("max peak", "max_peak", "bytes"),
    column("net", "net", "signed")],
  data.scopes.slice(), data.scopes.length);
  table("domains", [column("domain", "name", "name"), column("current", "current", "bytes"), column("peak", "peak", "bytes"),
    column("total", "total", "bytes"), column("allocations", "allocs", "count"), column("frees", "frees", "count")],
  data.domains.slice(), data.domains.length);
  table("types", [column("type", "name", "name"), column("sizeof", "size", "count"), column("instances", "instances", "count"),
    column("bytes", "bytes", "bytes"), column("peak instances", "peak", "count"), column("constructed", "constructed", "count")],
  data.types.slice(), data.types.length);
  if (data.pools.length > 0) {
    $("pools-section").hidden = false;
    table("pools", [column("pool", "name", "name"), column("current", "current", "bytes"), column("peak", "peak", "bytes"),
      column("total", "total", "bytes"), column("pieces", "allocs", "count"), column("frees", "frees", "count")],
    data.pools.slice(), data.pools.length);
  }
  if (data.collector.length > 0) {
    $("collector-section").hidden = false;
    table("collector", [column("generation", "generation", "count"), column("collections", "collections", "count"),
      column("collected", "collected", "count"), column("uncollectable", "uncollectable", "count"),
      column("threshold", "threshold", "count"), column("time", "seconds", "seconds"),
      column("longest", "longest_seconds", "seconds")],
    data.collector.slice(), data.collector.length);
  }
  $("temporary-note").textContent = "An allocation is temporary when its thread frees it before making " +
    count(data.temporary_window) + " more.";
  if (data.estimated) $("estimate-note").textContent = "Sampled (one per " + bytes(data.sample_bytes) +
    " on average): live figures are estimates.";

  plot();
  show(kind);

  // For scripts and tests: what the flamegraph shows now. `bytes` is a frame's width in the
  // kind's unit: bytes, or allocations for temporaries.
  window.memlensReport = {
    frames: () => shown.map(([v, x, w, row]) => ({ name: label(v), x, width: w, row, y: row * rowHeight,
      highlighted: nameMatches(v), bytes: weight[v] })),
    kind: () => kind.key,
    kinds: () => kinds.map((k) => k.key),
    zoomed: () => label(zoom),
    nodes: () => nodes,
    readyMs: performance.now(),
  };
  document.documentElement.dataset.ready = "true";
})();
