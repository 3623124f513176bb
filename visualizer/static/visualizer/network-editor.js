// The network editor: draws the graph the API previews (Cytoscape.js + dagre), folds blocks, and turns every
// change into an edit sent to /api/architectures/preview/ (undo and redo walk the edit list). Saving posts the
// same edits to /api/architectures/.
(function () {
  "use strict";
  const root = document.getElementById("network-editor");
  if (!root) return;
  const start = JSON.parse(document.getElementById("network-start").textContent);
  const canEdit = root.dataset.canEdit === "1";
  const csrf = (document.body.getAttribute("hx-headers") || "").match(/"X-CSRFToken":\s*"([^"]+)"/);
  const state = {
    project: start.project, base: start.base_model, edits: start.edits.slice(), redo: [], expanded: new Set(),
    preview: null, selected: null, busy: false, requests: 0, picked: new Set(),
  };
  const $ = (id) => document.getElementById(id);
  const status = (text) => { $("network-status").textContent = text; };

  async function api(path, body) {
    const response = await fetch(path, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": csrf ? csrf[1] : ""},
      body: JSON.stringify(body),
    });
    let data = {};
    try { data = await response.json(); } catch (e) { data = {detail: response.statusText}; }
    return {ok: response.ok, status: response.status, data};
  }

  function problemText(data) {
    if (data.detail) return data.detail;
    return Object.values(data).flat().join(" ");
  }

  // Ask the API for the graph after the edits; an edit it refuses is taken back and the reason shown.
  async function refresh(message) {
    const ticket = ++state.requests;
    status("Updating…");
    const {ok, data} = await api("/api/architectures/preview/", {project: state.project, base_model: state.base,
                                                                  edits: state.edits});
    if (ticket !== state.requests) return;  // a newer edit is on its way
    if (!ok) {  // the edit cannot apply: taken back at once, the reason shown where the user looks
      const refused = state.edits.pop();
      status("Refused: " + problemText(data));
      root.dataset.refused = JSON.stringify(refused || null);
      root.dataset.refusals = String(Number(root.dataset.refusals || 0) + 1);
      updateButtons();
      return;
    }
    const present = new Set(data.graph.nodes.map((n) => n.id));
    for (const id of [...state.picked]) if (!present.has(id)) state.picked.delete(id);
    state.preview = data;
    root.dataset.version = String(state.requests);
    renderCosts(); renderProblems(); renderChanges(); renderOutline(); draw(); renderLayer();
    status(message || (data.errors.length ? "The network does not fit together: see below." : "Up to date."));
    root.dataset.ready = "1";
    updateButtons();
  }

  function edit(change, message) {
    if (!canEdit) return;
    state.edits.push(change);
    state.redo = [];
    refresh(message);
  }

  function updateButtons() {
    document.querySelector("[data-action=undo]").disabled = !state.edits.length;
    document.querySelector("[data-action=redo]").disabled = !state.redo.length;
    const save = document.querySelector("[data-testid=save-network]");
    if (save) save.disabled = !state.preview || state.preview.errors.length > 0;
  }

  // --- numbers -------------------------------------------------------------------------------------------
  const millions = (n) => (n / 1e6).toFixed(2) + " M";
  const giga = (n) => (n / 1e9).toFixed(3) + " G";
  function delta(now, before, unit, digits) {
    if (now == null || before == null || now === before) return "";
    const d = now - before;
    return ` <span class="${d > 0 ? "worse" : "better"}">(${d > 0 ? "+" : ""}${d.toFixed(digits)}${unit})</span>`;
  }

  function renderCosts() {
    const c = state.preview.costs, b = state.preview.base_costs;
    const rows = [
      ["Parameters", millions(c.params) + delta(c.params / 1e6, b.params / 1e6, " M", 2), "params"],
      ["FLOPs", giga(c.flops) + delta(c.flops / 1e9, b.flops / 1e9, " G", 3), "flops"],
      ["Predicted latency", c.latency_ms == null ? "—" :
        `${c.latency_ms.toFixed(2)} ms${c.budget_ms ? " of " + c.budget_ms + " ms" : ""}` +
        delta(c.latency_ms, b.latency_ms, " ms", 2), "latency"],
      ["Predicted memory", c.memory_mb == null ? "—" : `${c.memory_mb.toFixed(0)} MiB of ${c.memory_limit_mb} MiB` +
        delta(c.memory_mb, b.memory_mb, " MiB", 0), "memory"],
      ["Fits the device", c.fits == null ? "—" : (c.fits ? "yes" : "no"), "fits"],
    ];
    $("network-costs").innerHTML = rows.map(([k, v, id]) =>
      `<dt>${k}</dt><dd data-testid="cost-${id}">${v}</dd>`).join("") +
      (c.confidence ? `<dd class="muted small">${escapeHtml(c.confidence)}</dd>` : "");
  }

  function renderProblems() {
    const p = state.preview;
    $("network-errors").innerHTML = p.errors.length ? `<ul class="errorlist">${p.errors.map((e) =>
      `<li class="error" data-node="${e.node}">${escapeHtml(e.message)}</li>`).join("")}</ul>` : "";
    $("network-flags").innerHTML = p.flags.length ? `<ul class="small">${p.flags.map((f) =>
      `<li class="flag-${f.level}">${escapeHtml(f.level)}: ${escapeHtml(f.message)}</li>`).join("")}</ul>` : "";
  }

  function renderChanges() {
    $("network-changes").innerHTML = state.preview.changes.map((line) => `<li>${escapeHtml(line)}</li>`).join("") ||
      '<li class="muted">No change from the zoo model.</li>';
  }

  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, (ch) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;",
                                                      "'": "&#39;"}[ch]));
  }

  // --- folding -------------------------------------------------------------------------------------------
  function blocksById() {
    const out = {};
    for (const b of state.preview.graph.blocks) out[b.id] = b;
    return out;
  }

  function ancestors(blockId, blocks) {
    const chain = [];
    for (let id = blockId; id; id = blocks[id] ? blocks[id].parent : null) chain.unshift(id);
    return chain;  // outermost first
  }

  // The element that stands for a node: itself, or its outermost folded block.
  function representative(node, blocks) {
    for (const id of ancestors(node.block, blocks)) if (!state.expanded.has(id)) return id;
    return node.id;
  }

  function visibleBlock(blockId, blocks) {
    return ancestors(blocks[blockId].parent, blocks).every((id) => state.expanded.has(id));
  }

  function elements() {
    const graph = state.preview.graph, blocks = blocksById();
    const errorNodes = new Set(state.preview.errors.map((e) => e.node));
    const flagNodes = new Set(state.preview.flags.map((f) => f.node));
    const members = {};
    for (const n of graph.nodes) for (const id of ancestors(n.block, blocks)) (members[id] = members[id] || []).push(n);
    const out = [];
    for (const b of graph.blocks) {
      if (!visibleBlock(b.id, blocks)) continue;
      const inner = members[b.id] || [];
      const classes = ["block", state.expanded.has(b.id) ? "open" : "folded"];
      if (inner.some((n) => errorNodes.has(n.id))) classes.push("error");
      if (inner.some((n) => flagNodes.has(n.id))) classes.push("flag");
      const layers = inner.filter((n) => n.kind === "module").length;
      out.push({group: "nodes", classes: classes.join(" "), data: {
        id: "block:" + b.id, block: b.id, parent: b.parent && state.expanded.has(b.parent) ? "block:" + b.parent : undefined,
        label: state.expanded.has(b.id) ? `${b.id} · ${b.type}` : `${b.id}\n${b.type} · ${layers} layers`}});
    }
    const reps = {};
    for (const n of graph.nodes) {
      const rep = representative(n, blocks);
      reps[n.id] = rep === n.id ? n.id : "block:" + rep;
      if (rep !== n.id) continue;
      const shape = Array.isArray(n.shape) && typeof n.shape[0] === "number" ? n.shape.slice(1).join("×") : "";
      const classes = [n.kind, errorNodes.has(n.id) ? "error" : "", flagNodes.has(n.id) ? "flag" : "",
                       n.added ? "added" : "", state.picked.has(n.id) ? "picked" : ""].join(" ");
      out.push({group: "nodes", classes, data: {
        id: n.id, node: n.id, parent: n.block ? "block:" + n.block : undefined,
        label: `${n.target || n.op}\n${n.kind === "module" ? n.op + " " : ""}${shape}`}});
    }
    const seen = new Set();
    for (const n of graph.nodes) {
      for (const src of n.inputs) {
        const a = reps[src], b = reps[n.id];
        if (!a || !b || a === b || seen.has(a + ">" + b)) continue;
        seen.add(a + ">" + b);
        out.push({group: "edges", data: {id: "e:" + a + ">" + b, source: a, target: b}});
      }
    }
    return out;
  }

  let cy = null;
  function draw() {
    const els = elements();
    if (!cy) {
      cy = cytoscape({
        container: $("network-graph"), elements: els, wheelSensitivity: 0.3, minZoom: 0.05, maxZoom: 3,
        style: [
          {selector: "node", style: {"label": "data(label)", "text-wrap": "wrap", "font-size": 9, "shape": "round-rectangle",
            "width": 150, "height": 34, "text-valign": "center", "background-color": "#e8eef8", "border-width": 1,
            "border-color": "#7a8aa5"}},
          {selector: "node.function, node.method", style: {"background-color": "#f4f4f4", "width": 90, "shape": "ellipse"}},
          {selector: "node.input, node.output", style: {"background-color": "#dff3e4", "width": 90}},
          {selector: "node.folded", style: {"background-color": "#d7e3fb", "border-width": 2, "height": 44, "width": 170}},
          {selector: "node.open", style: {"background-opacity": 0.06, "text-valign": "top", "font-size": 10,
            "border-style": "dashed", "padding": 8}},
          {selector: "node.added", style: {"border-color": "#1d7a3a", "border-width": 2}},
          {selector: "node.flag", style: {"border-color": "#c77700", "border-width": 3}},
          {selector: "node.error", style: {"border-color": "#c0262d", "border-width": 3, "background-color": "#fde8e8"}},
          {selector: "node:selected", style: {"border-color": "#1a56db", "border-width": 3}},
          {selector: "node.picked", style: {"border-color": "#7c3aed", "border-width": 3, "border-style": "double"}},
          {selector: "edge", style: {"width": 1.2, "curve-style": "bezier", "target-arrow-shape": "triangle",
            "line-color": "#8a94a6", "target-arrow-color": "#8a94a6", "arrow-scale": 0.7}},
        ],
      });
      cy.on("tap", "node", (event) => {
        const data = event.target.data();
        const extend = event.originalEvent && (event.originalEvent.shiftKey || event.originalEvent.ctrlKey);
        if (extend && data.node && canEdit) {  // shift-click: pick (or unpick) for a group
          pick(data.node, !state.picked.has(data.node));
          renderOutline();
          return;
        }
        if (data.block) toggle(data.block);
        else select(data.node);
      });
      window.networkEditor.cy = cy;
    } else {
      cy.elements().remove();
      cy.add(els);
    }
    cy.layout({name: "dagre", rankDir: "TB", nodeSep: 20, rankSep: 24, animate: false}).run();
    if (state.selected) cy.$id(state.selected).select();
    readable();
  }

  // The whole network when it fits at a readable size; else readable, centred on what the user works on.
  function readable() {
    cy.fit(undefined, 20);
    if (cy.zoom() >= 0.7) return;
    const focus = (state.selected && cy.$id(state.selected).nonempty() && cy.$id(state.selected)) ||
      (state.focus && cy.$id("block:" + state.focus).nonempty() && cy.$id("block:" + state.focus)) || cy.nodes().first();
    cy.zoom(0.7);
    cy.center(focus);
  }

  function toggle(blockId) {
    if (state.expanded.has(blockId)) {
      for (const id of [...state.expanded]) if (id === blockId || id.startsWith(blockId + ".")) state.expanded.delete(id);
    } else {
      state.expanded.add(blockId);
    }
    state.focus = blockId;
    renderOutline(); draw();
  }

  function renderOutline() {
    const graph = state.preview.graph, blocks = blocksById();
    const items = [];
    const listed = new Set(), layers = new Set();
    for (const n of graph.nodes) {
      const chain = ancestors(n.block, blocks);
      for (const [depth, id] of chain.entries()) {
        if (listed.has(id)) continue;
        listed.add(id);
        if (!chain.slice(0, depth).every((a) => state.expanded.has(a))) continue;
        const open = state.expanded.has(id);
        const text = escapeHtml(id);  // a block's name is a teammate's words: never markup
        items.push(`<li style="margin-left:${depth}em"><button type="button" class="linklike" data-block="${text}"
          data-testid="block-${text}" aria-expanded="${open}">${open ? "▾" : "▸"} ${text} · ${escapeHtml(blocks[id].type)}</button>${canEdit ?
          ` <button type="button" class="linklike muted small" data-ungroup="${text}" data-testid="ungroup-${text}"
          title="Ungroup: its members go to the block around it">ungroup</button>` : ""}</li>`);
      }
      if (n.kind !== "module" || !chain.every((a) => state.expanded.has(a))) continue;
      const again = layers.has(n.target);  // a layer called twice (a shared ReLU): named by its call
      layers.add(n.target);
      const name = again ? n.id : n.target;
      items.push(`<li style="margin-left:${chain.length}em" class="droppable" data-node="${n.id}">${canEdit ?
        `<input type="checkbox" data-pick="${n.id}" data-testid="pick-${name}" aria-label="Pick ${name} to group"
        ${state.picked.has(n.id) ? "checked" : ""}> ` : ""}<button type="button"
        class="linklike" data-node="${n.id}" data-testid="layer-${name}">${n.target}${again ?
        " (" + n.id + ")" : ""} · ${n.op}</button></li>`);
    }
    $("network-outline").innerHTML = items.join("");
  }

  // --- one layer -----------------------------------------------------------------------------------------
  function select(nodeId) {
    state.selected = nodeId;
    if (cy) { cy.$(":selected").unselect(); cy.$id(nodeId).select(); }
    renderLayer();
  }

  // The layer panel is the server's htmx form for the node as the draft edits leave it (the edits go along);
  // typing is checked there at once, and Apply answers with a `network-edit` event carrying the accepted edit.
  function renderLayer() {
    const box = $("network-layer");
    const node = state.preview.graph.nodes.find((n) => n.id === state.selected);
    if (!node) return;
    box.innerHTML = `<div id="layer-form-box" data-testid="layer-form-box"></div>${rewireFields(node)}`;
    bindRewire(box, node);
    window.htmx.ajax("GET", root.dataset.layerUrl, {target: "#layer-form-box", swap: "innerHTML",
      values: {node: node.id, edits: JSON.stringify(state.edits), base_model: state.base}});
  }

  root.addEventListener("network-edit", (event) => edit(event.detail.edit, event.detail.message));

  $("network-layer").addEventListener("click", (event) => {
    const action = event.target.dataset && event.target.dataset.action;
    const form = $("layer-form");
    if (!action || !form) return;
    const node = state.preview.graph.nodes.find((n) => n.id === form.dataset.node);
    if (!node) return;
    if (action === "remove") { state.selected = null; $("network-layer").innerHTML = ""; edit({op: "remove", node: node.id}); }
    if (action === "replace") edit({op: "replace", node: node.id, layer: form.elements.replace.value});
    if (action === "resize") {
      const key = node.op === "Conv2d" ? "out_channels" : "out_features";
      edit({op: "resize", node: node.id, channels: Number(form.elements[key].value)}, `Resized ${node.target}.`);
    }
  });

  // --- inputs: feed a node from another, earlier node (a skip connection moved, a branch rewired) -----------
  function rewireFields(node) {
    if (!canEdit || !node.inputs.length) return "";
    const nodes = state.preview.graph.nodes;
    const earlier = nodes.slice(0, nodes.findIndex((n) => n.id === node.id)).filter((n) => n.kind !== "output");
    const name = (n) => escapeHtml(n.target || (n.block ? n.block + "." + n.op : n.id));
    return `<div class="layer-inputs" data-testid="layer-inputs"><p class="small muted">Reads (pick another earlier
      node to rewire it):</p>${node.inputs.map((input, k) => `<label class="small">input ${k + 1}
      <select data-rewire="${escapeHtml(input)}" data-testid="rewire-${k}">${earlier.map((n) =>
        `<option value="${escapeHtml(n.id)}" ${n.id === input ? "selected" : ""}>${name(n)}</option>`).join("")}
      </select></label>`).join("")}</div>`;
  }

  function bindRewire(box, node) {
    box.querySelectorAll("select[data-rewire]").forEach((select) => select.addEventListener("change", () => {
      const from = select.dataset.rewire, to = select.value;
      if (to !== from) edit({op: "rewire", node: node.id, input: from, to}, `Rewired ${node.target || node.id}.`);
    }));
  }

  // --- folding: group picked nodes into a block, ungroup a block ------------------------------------------
  function picked() {  // in network order
    return state.preview.graph.nodes.map((n) => n.id).filter((id) => state.picked.has(id));
  }

  function pick(id, on) {
    if (on) state.picked.add(id); else state.picked.delete(id);
    if (cy) cy.$id(id).toggleClass("picked", on);
    const count = picked().length;
    $("network-picked").textContent = count ? `${count} picked` : "";
  }

  function group() {
    const nodes = picked();
    if (!nodes.length) {
      status("Pick the layers to group first: tick them in the outline (or shift-click them in the graph).");
      return;
    }
    const field = $("group-name");
    const taken = new Set(state.preview.graph.blocks.map((b) => b.id));
    let name = field ? field.value.trim() : "";
    for (let i = 1; !name; i++) if (!taken.has(`group${i}`)) name = `group${i}`;  // a taken name: the API says so
    for (const id of nodes) pick(id, false);
    if (field) field.value = "";
    edit({op: "group", nodes, name}, `Grouped ${nodes.length} node(s) as ${name}.`);
  }

  function ungroup(blockId) {
    for (const id of [...state.expanded]) if (id === blockId) state.expanded.delete(id);
    edit({op: "ungroup", block: blockId}, `Ungrouped ${blockId}.`);
  }

  // --- palette: drag a layer onto a node ------------------------------------------------------------------
  function renderPalette(names) {
    $("network-palette").innerHTML = names.map((name) =>
      `<li draggable="${canEdit}" data-layer="${name}" class="palette-item" data-testid="palette-${name}">${name}</li>`).join("");
  }

  function insertAfter(nodeId, layer) {
    if (nodeId && layer) edit({op: "insert", after: nodeId, layer}, `Inserted ${layer}.`);
  }

  document.addEventListener("dragstart", (event) => {
    const layer = event.target.dataset && event.target.dataset.layer;
    if (layer) event.dataTransfer.setData("text/x-layer", layer);
  });
  for (const target of [$("network-graph"), $("network-outline")]) {
    target.addEventListener("dragover", (event) => event.preventDefault());
  }
  $("network-graph").addEventListener("drop", (event) => {
    event.preventDefault();
    const layer = event.dataTransfer.getData("text/x-layer");
    const box = $("network-graph").getBoundingClientRect();
    const x = event.clientX - box.left, y = event.clientY - box.top;
    const hit = cy.nodes().filter((n) => !n.isParent() && n.data("node")).filter((n) => {
      const b = n.renderedBoundingBox();
      return x >= b.x1 && x <= b.x2 && y >= b.y1 && y <= b.y2;
    });
    if (hit.length) insertAfter(hit[0].data("node"), layer);
    else status("Drop a layer onto a layer node: it is inserted after it.");
  });
  $("network-outline").addEventListener("drop", (event) => {
    event.preventDefault();
    const item = event.target.closest("[data-node]");
    if (item) insertAfter(item.dataset.node, event.dataTransfer.getData("text/x-layer"));
  });

  // --- toolbar, outline, save -----------------------------------------------------------------------------
  root.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    if (button.dataset.ungroup) { ungroup(button.dataset.ungroup); return; }
    if (button.dataset.block) toggle(button.dataset.block);
    else if (button.dataset.node && button.closest("#network-outline")) select(button.dataset.node);
    const action = button.dataset.action;
    if (action === "undo" && state.edits.length) { state.redo.push(state.edits.pop()); refresh("Undone."); }
    if (action === "redo" && state.redo.length) { state.edits.push(state.redo.pop()); refresh("Redone."); }
    if (action === "fit" && cy) cy.fit(undefined, 20);
    if (action === "group") group();
    if (action === "fold-all") { state.expanded.clear(); renderOutline(); draw(); }
    if (action === "unfold-all") { for (const b of state.preview.graph.blocks) state.expanded.add(b.id); renderOutline(); draw(); }
  });

  $("network-outline").addEventListener("change", (event) => {
    const id = event.target.dataset && event.target.dataset.pick;
    if (id) pick(id, event.target.checked);
  });

  const saveForm = $("network-save");
  if (saveForm) saveForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    status("Saving…");
    const {ok, data} = await api("/api/architectures/", {project: state.project, base_model: state.base,
                                                         edits: state.edits, note: saveForm.elements.note.value});
    if (!ok) { status("Not saved: " + problemText(data)); return; }
    status(`Saved version ${data.version}: the train stage trains it.`);
    const list = $("network-versions");
    list.querySelectorAll("strong").forEach((s) => s.remove());
    list.querySelectorAll(".muted").forEach((s) => s.remove());
    const item = document.createElement("li");
    item.innerHTML = `v${data.version} · ${escapeHtml(data.base_model)} · ${data.edits.length} edit(s) · ` +
      `${escapeHtml(data.created_by)}${data.note ? " — " + escapeHtml(data.note) : ""} <strong>(trains)</strong>`;
    list.prepend(item);
  });

  window.networkEditor = {state, cy: null};
  refresh().then(() => { if (state.preview) renderPalette(state.preview.palette); });
})();
