// circuitgrad's circuit viewer (MIT). Reads the JSON of lower/html.py's viewer_data from
// #cg-data; lays out the open groups (a longest-path layer per item, one band per part);
// no recursion over the circuit (work lists), linear work per relayout.
(function () {
  "use strict";
  var T0 = performance.now();
  var D = JSON.parse(document.getElementById("cg-data").textContent);
  var N = D.nodes, G = D.groups, P = D.palette;
  var n = N.sym.length, ng = G.parent.length;
  var W = 168, HG = 46, HN = 34, DX = 214, DY = 58, BANDGAP = 70;
  var LINE = [P.forward[1], P.adjoint[1], P.tangent[1]];

  // -- links: the adjoint node of each forward node, and back --------------------------
  var partner = new Int32Array(n).fill(-1);
  D.adjoint_of.forEach(function (p) { partner[p[1]] = p[0]; partner[p[0]] = p[1]; });

  // -- the state: which groups are open -----------------------------------------------
  var open = new Uint8Array(ng);
  open[0] = 1;
  G.children[0].forEach(function (g) { open[g] = 1; });  // the parts, showing their groups
  var selected = -1, hits = new Set(), onpath = null;

  function esc(s) {
    return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;");
  }
  function counts(g) {  // as lower/dot.py's counts_text
    var a = G.count[g], b = G.operations[g];
    return a + (a === 1 ? " node · " : " nodes · ") + b + (b === 1 ? " op" : " ops");
  }
  function clip(s, k) { s = String(s); return s.length > k ? s.slice(0, k - 1) + "…" : s; }

  // -- the page ------------------------------------------------------------------------
  var app = document.getElementById("cg-app");
  app.innerHTML =
    '<div id="cg-side">' +
    '<h2>Search</h2><input id="cg-search" type="search" placeholder="name, op, line or #id">' +
    '<div id="cg-hits"></div>' +
    '<h2>Selection</h2><div id="cg-sel" class="muted">click a node; click a group to open it</div>' +
    '<h2>Path from an input to an output</h2>' +
    '<select id="cg-from"></select><select id="cg-to"></select>' +
    '<button id="cg-path">highlight</button><button id="cg-clear">clear</button>' +
    '<h2>Size</h2><div id="cg-size"></div>' +
    '<h2>View</h2><button id="cg-close">close all groups</button>' +
    '<button id="cg-fit">fit</button></div>' +
    '<div id="cg-main"><svg id="cg-svg" xmlns="http://www.w3.org/2000/svg">' +
    '<g class="svg-pan-zoom_viewport" id="cg-view"></g></svg><div id="cg-tip"></div></div>';
  var view = document.getElementById("cg-view"), tip = document.getElementById("cg-tip");
  var main = document.getElementById("cg-main");

  // -- layout --------------------------------------------------------------------------
  var rep = new Int32Array(n), items = [], pos = [];
  function visible() {
    // The open frontier, in tree order: closed groups and the nodes of open leaf groups.
    items = [];
    var stack = [0];
    while (stack.length) {
      var g = stack.pop();
      if (!open[g]) { items.push({ g: g, lo: n }); continue; }
      var m = G.members[g];
      for (var k = 0; k < m.length; k++) items.push({ node: m[k], lo: m[k] });
      var ch = G.children[g];
      for (var j = ch.length - 1; j >= 0; j--) stack.push(ch[j]);
    }
    // Each node's item: a work list down from each visible group.
    items.forEach(function (it, k) {
      if (it.node !== undefined) { rep[it.node] = k; it.part = N.part[it.node]; return; }
      it.part = G.part[it.g];
      var st = [it.g];
      while (st.length) {
        var h = st.pop(), mm = G.members[h];
        for (var q = 0; q < mm.length; q++) {
          rep[mm[q]] = k;
          if (mm[q] < it.lo) it.lo = mm[q];
        }
        var cc = G.children[h];
        for (var r = 0; r < cc.length; r++) st.push(cc[r]);
      }
    });
  }

  var edges = [], hitItems = new Set();
  function layout() {
    visible();
    // An item is on the path (or a search hit) when one of its nodes is.
    if (onpath) {
      var mark = new Uint8Array(items.length);
      for (var j = 0; j < n; j++) if (onpath[j]) mark[rep[j]] = 1;
      items.forEach(function (it, k) { it.path = !!mark[k]; });
    }
    hitItems = new Set();
    hits.forEach(function (h) { if (h[0] === "n") hitItems.add(rep[+h.slice(1)]); });
    var m = items.length, key = new Map();
    edges = [];
    for (var i = 0; i < n; i++) {
      var ri = rep[i];
      for (var k = N.starts[i]; k < N.starts[i + 1]; k++) {
        var ra = rep[N.args[k]];
        if (ra === ri) continue;
        var id = ra * m + ri, e = key.get(id);
        if (e === undefined) {
          e = { s: ra, t: ri, count: 0, path: false };
          key.set(id, e);
          edges.push(e);
        }
        e.count++;
        if (onpath && onpath[i] && onpath[N.args[k]]) e.path = true;
      }
    }
    // Layers: the longest path from the part's first items, over edges inside a part that
    // point forward in node order (the order is topological).
    var order = items.map(function (_, k) { return k; });
    order.sort(function (a, b) { return items[a].lo - items[b].lo; });
    var rank = new Int32Array(m);
    order.forEach(function (k, r) { rank[k] = r; });
    var into = items.map(function () { return []; });
    edges.forEach(function (e) {
      if (items[e.s].part === items[e.t].part && rank[e.s] < rank[e.t]) into[e.t].push(e.s);
    });
    var layer = new Int32Array(m);
    order.forEach(function (k) {
      var l = 0;
      into[k].forEach(function (s) { if (layer[s] + 1 > l) l = layer[s] + 1; });
      layer[k] = l;
    });
    // One band per part; in a layer, items in node order; the adjoint part flows back.
    pos = new Array(m);
    var y0 = 0, bands = [];
    [0, 1, 2].forEach(function (part) {
      var inPart = order.filter(function (k) { return items[k].part === part; });
      if (!inPart.length) return;
      var maxLayer = 0, rows = {};
      inPart.forEach(function (k) { if (layer[k] > maxLayer) maxLayer = layer[k]; });
      var height = 0;
      inPart.forEach(function (k) {
        var l = layer[k], r = rows[l] || 0;
        rows[l] = r + 1;
        var x = (part === 1 ? maxLayer - l : l) * DX;
        pos[k] = { x: x, y: y0 + 30 + r * DY };
        if ((r + 1) * DY > height) height = (r + 1) * DY;
      });
      bands.push({ part: part, y: y0, h: height + 40, w: maxLayer * DX + W + 40 });
      y0 += height + 40 + BANDGAP;
    });
    return bands;
  }

  // -- drawing -------------------------------------------------------------------------
  function nodeText(i) {
    return N.title[i] ? N.sym[i] + "  " + N.title[i] : N.sym[i];
  }
  function draw() {
    var bands = layout(), out = [];
    bands.forEach(function (b) {
      out.push('<g class="band"><rect x="-20" y="' + b.y + '" width="' + b.w + '" height="' +
        b.h + '" rx="8" fill="' + P.parts[b.part] + '" stroke="#cbd5e1"/><text x="-10" y="' +
        (b.y + 14) + '">' + esc(D.parts[b.part] + " pass" +
        (b.part === 1 ? ": δ = ∂J/∂v, flowing back" : "")) + "</text></g>");
    });
    var drawn = 0;
    edges.forEach(function (e) {
      if (drawn > 6000 && !e.path) return;
      drawn++;
      var a = pos[e.s], b = pos[e.t], sa = items[e.s], back = sa.part === 1 &&
        items[e.t].part === 1;
      var h = function (k) { return items[k].g !== undefined ? HG : HN; };
      var x1 = back ? a.x : a.x + W, y1 = a.y + h(e.s) / 2;
      var x2 = back ? b.x + W : b.x, y2 = b.y + h(e.t) / 2;
      var cross = sa.part !== items[e.t].part;
      var dx = Math.max(40, Math.abs(x2 - x1) / 2) * (back ? -1 : 1);
      var colour = cross ? P.reference : LINE[items[e.t].part];
      out.push('<path class="edge' + (cross ? " cross" : "") + (e.path ? " onpath" : "") +
        '" stroke="' + colour + '" stroke-width="' + Math.min(6, 1 + Math.log2(e.count)) +
        '" d="M' + x1 + "," + y1 + " C" + (x1 + dx) + "," + y1 + " " + (x2 - dx) + "," + y2 +
        " " + x2 + "," + y2 + '"/>');
    });
    items.forEach(function (it, k) {
      var p = pos[k], cls, body;
      if (it.g !== undefined) {
        var g = it.g, mark = hits.has("g" + g) || hitItems.has(k) ? " hit" : "";
        if (selected >= 0 && rep[selected] === k) mark += " selected";
        if (selected >= 0 && partner[selected] >= 0 && rep[partner[selected]] === k)
          mark += " partner";
        if (onpath && it.path) mark += " onpath";
        cls = "item group" + mark;
        body = '<rect width="' + W + '" height="' + HG + '" rx="6" fill="' +
          P.parts[G.part[g]] + '" stroke="' + LINE[G.part[g]] + '"/>' +
          '<text x="8" y="15">⊞ ' + esc(clip(G.label[g], 21)) + "</text>" +
          '<text class="sub" x="8" y="33">' + counts(g) + "</text>";
        out.push('<g class="' + cls + '" data-group="' + g + '" data-item="' + k +
          '" transform="translate(' + p.x + "," + p.y + ')">' + body + "</g>");
      } else {
        var i = it.node, kind = D.kinds[N.kind[i]], col = P[kind];
        var m2 = hits.has("n" + i) ? " hit" : "";
        if (i === selected) m2 += " selected";
        if (selected >= 0 && partner[selected] === i) m2 += " partner";
        if (onpath && onpath[i]) m2 += " onpath";
        body = '<rect width="' + W + '" height="' + HN + '" rx="' + (kind === "const" ? 3 : 10) +
          '" fill="' + col[0] + '" stroke="' + col[1] + '"/>' +
          '<text x="8" y="' + (N.shape[i] ? 12 : 17) + '">' + esc(clip(nodeText(i), 22)) +
          "</text>" + (N.shape[i] ? '<text class="sub" x="8" y="26">' + esc(N.shape[i]) +
          "</text>" : "");
        out.push('<g class="item node' + m2 + '" data-node="' + i + '" data-item="' + k +
          '" transform="translate(' + p.x + "," + p.y + ')">' + body + "</g>");
      }
    });
    view.innerHTML = out.join("");
  }

  // -- pan and zoom (svg-pan-zoom, vendored) ---------------------------------------------
  var pz = null;
  function refresh(fit) {
    draw();
    if (!pz) {
      pz = svgPanZoom("#cg-svg", { viewportSelector: "#cg-view", zoomScaleSensitivity: 0.3,
        minZoom: 0.02, maxZoom: 20, fit: true, center: true, controlIconsEnabled: false,
        dblClickZoomEnabled: false });
    } else {
      pz.updateBBox();
      if (fit) { pz.fit(); pz.center(); }
    }
    if (fit) readable();
  }
  function readable() {
    // Fitting a big view makes its boxes unreadable: show its start at a readable zoom.
    var s = pz.getSizes();
    if (s.realZoom >= 0.55) return;
    pz.zoom(0.8 / (s.realZoom / pz.getZoom()));
    pz.pan({ x: 40, y: 30 });
  }
  function centerOn(k) {
    if (!pz || !pos[k]) return;
    var s = pz.getSizes(), z = Math.max(s.realZoom, 0.8);
    pz.zoom(z / (s.realZoom / pz.getZoom()));
    s = pz.getSizes();
    pz.pan({ x: s.width / 2 - (pos[k].x + W / 2) * s.realZoom,
             y: s.height / 2 - (pos[k].y + HG / 2) * s.realZoom });
  }

  // -- revealing, selecting ------------------------------------------------------------
  function reveal(g) {  // open g's ancestors and g
    while (g >= 0) { open[g] = 1; g = G.parent[g]; }
  }
  function groupPath(g) {
    var path = [];
    while (g > 0) { path.unshift(g); g = G.parent[g]; }
    return path;
  }
  function info(i) {
    var lines = [nodeText(i) + "   (node #" + i + ", " + D.ops[N.op[i]] + ")"];
    if (N.shape[i]) lines.push("shape " + N.shape[i]);
    if (N.value) {
      lines.push("value " + N.value[i]);
      if (N.delta[i]) lines.push("δ " + N.delta[i]);
    }
    return lines;
  }
  function select(i) {
    selected = i;
    reveal(N.group[i]);
    if (partner[i] >= 0) reveal(N.group[partner[i]]);
    refresh(false);
    var s = document.getElementById("cg-sel"), h = [];
    info(i).forEach(function (l) {
      h.push('<div class="' + (l.slice(0, 2) === "δ " ? "delta" : "") + '">' + esc(l) + "</div>");
    });
    if (partner[i] >= 0) {
      var p = partner[i];
      h.push('<div>' + (N.part[i] === 0 ? "its adjoint" : "its forward node") + ': <button ' +
        'class="hit" data-go="' + p + '">' + esc(nodeText(p)) + " #" + p + "</button></div>");
    }
    h.push('<div class="muted">in: ' + groupPath(N.group[i]).map(function (g) {
      return '<button class="hit crumb" data-close="' + g + '" title="close this group">' +
        esc(clip(G.label[g], 30)) + "</button>";
    }).join(" › ") + "</div>");
    s.innerHTML = h.join("");
    s.classList.remove("muted");
    centerOn(rep[i]);
  }

  // -- events --------------------------------------------------------------------------
  view.addEventListener("click", function (ev) {
    var el = ev.target.closest ? ev.target.closest(".item") : null;
    if (!el) return;
    if (el.dataset.group !== undefined) {
      open[+el.dataset.group] = 1;
      refresh(false);
    } else select(+el.dataset.node);
  });
  view.addEventListener("mousemove", function (ev) {
    var el = ev.target.closest ? ev.target.closest(".item") : null;
    if (!el) { tip.style.display = "none"; return; }
    var h;
    if (el.dataset.group !== undefined) {
      var g = +el.dataset.group;
      h = esc(G.label[g]) + "\n" + counts(g) + " (click to open)";
    } else {
      h = info(+el.dataset.node).map(function (l) {
        return l.slice(0, 2) === "δ " ? '<span class="delta">' + esc(l) + "</span>" : esc(l);
      }).join("\n");
    }
    tip.innerHTML = h;
    var r = main.getBoundingClientRect();
    tip.style.left = (ev.clientX - r.left + 14) + "px";
    tip.style.top = (ev.clientY - r.top + 14) + "px";
    tip.style.display = "block";
  });
  view.addEventListener("mouseleave", function () { tip.style.display = "none"; });

  function search(q) {
    q = q.trim().toLowerCase();
    hits = new Set();
    var out = [], box = document.getElementById("cg-hits");
    if (!q) { box.innerHTML = ""; refresh(false); return out; }
    var id = q[0] === "#" ? parseInt(q.slice(1), 10) : -1;
    for (var g = 1; g < ng && out.length < 40; g++) {
      if (G.label[g].toLowerCase().indexOf(q) >= 0) { out.push("g" + g); hits.add("g" + g); }
    }
    for (var i = 0; i < n && out.length < 80; i++) {
      if (i === id || (id < 0 && (N.title[i].toLowerCase().indexOf(q) >= 0 ||
          N.sym[i].toLowerCase() === q || D.ops[N.op[i]] === q))) {
        out.push("n" + i);
        hits.add("n" + i);
      }
    }
    box.innerHTML = out.length ? out.map(function (h) {
      var k = +h.slice(1);
      return h[0] === "g"
        ? '<button class="hit" data-open="' + k + '">⊞ ' + esc(G.label[k]) + " (" +
          counts(k) + ")</button>"
        : '<button class="hit" data-go="' + k + '">' + esc(nodeText(k)) + " #" + k +
          ' <span class="muted">' + esc(D.ops[N.op[k]]) + "</span></button>";
    }).join("") : '<span class="muted">no match</span>';
    refresh(false);
    return out;
  }
  var timer = null;
  document.getElementById("cg-search").addEventListener("input", function (ev) {
    clearTimeout(timer);
    timer = setTimeout(function () { search(ev.target.value); }, 150);
  });
  document.getElementById("cg-side").addEventListener("click", function (ev) {
    var b = ev.target.closest ? ev.target.closest("button") : null;
    if (!b) return;
    if (b.dataset.go !== undefined) select(+b.dataset.go);
    else if (b.dataset.open !== undefined) {
      var g = +b.dataset.open;
      reveal(G.parent[g]);
      refresh(false);
      var k = items.findIndex(function (it) { return it.g === g; });
      if (k >= 0) centerOn(k);
    } else if (b.dataset.close !== undefined) {
      open[+b.dataset.close] = 0;
      refresh(false);
    }
  });
  document.getElementById("cg-close").addEventListener("click", function () {
    open.fill(0);
    open[0] = 1;
    G.children[0].forEach(function (g) { open[g] = 1; });
    refresh(true);
  });
  document.getElementById("cg-fit").addEventListener("click", function () {
    pz.fit(); pz.center();  // the whole view, however small its boxes
  });

  // -- the path from an input to an output ------------------------------------------
  var from = document.getElementById("cg-from"), to = document.getElementById("cg-to");
  from.innerHTML = D.inputs.map(function (p) {
    return '<option value="' + p[1] + '">from ' + esc(p[0]) + "</option>";
  }).join("");
  to.innerHTML = D.outputs.map(function (p) {
    return '<option value="' + p[1] + '">to ' + esc(p[0]) + "</option>";
  }).join("");
  function path(a, b) {
    var fwd = new Uint8Array(n), back = new Uint8Array(n), i, k;
    fwd[a] = 1;
    for (i = a + 1; i <= b; i++) {
      for (k = N.starts[i]; k < N.starts[i + 1]; k++) if (fwd[N.args[k]]) { fwd[i] = 1; break; }
    }
    back[b] = 1;
    for (i = b; i >= a; i--) {
      if (!back[i]) continue;
      for (k = N.starts[i]; k < N.starts[i + 1]; k++) back[N.args[k]] = 1;
    }
    var on = new Uint8Array(n), count = 0;
    for (i = a; i <= b; i++) if (fwd[i] && back[i]) { on[i] = 1; count++; }
    return { on: on, count: count };
  }
  document.getElementById("cg-path").addEventListener("click", function () {
    var p = path(+from.value, +to.value);
    onpath = p.count ? p.on : null;
    refresh(false);
    document.getElementById("cg-sel").textContent = p.count
      ? p.count + " nodes on the paths (in red)" : "no path";
  });
  document.getElementById("cg-clear").addEventListener("click", function () {
    onpath = null; selected = -1; hits = new Set(); refresh(false);
  });

  // -- the size panel -------------------------------------------------------------------
  var S = D.size, rows = [["nodes", S.nodes], ["operations", S.operations],
    ["operation nodes", S.size], ["inputs", S.inputs], ["outputs", S.outputs],
    ["groups", S.groups]];
  G.children[0].forEach(function (g) {
    rows.push([G.label[g] + " part", G.count[g] + " nodes, " + G.operations[g] + " ops"]);
  });
  document.getElementById("cg-size").innerHTML = "<table>" + rows.map(function (r) {
    return "<tr><td>" + esc(r[0]) + '</td><td class="n">' + esc(r[1]) + "</td></tr>";
  }).join("") + '</table><div class="muted" style="margin-top:6px">largest groups</div>' +
    "<table>" + S.largest.map(function (r) {
      return '<tr><td><button class="hit" data-open="' + r[3] + '">' + esc(clip(r[0], 28)) +
        '</button></td><td class="n">' + r[1] + '</td><td class="n muted">' + r[2] +
        " ops</td></tr>";
    }).join("") + "</table>";

  refresh(true);
  window.cgViewer = { ready: true, loadMs: performance.now() - T0, nodes: n,
    search: search, select: select, open: function (g) { reveal(g); refresh(false); },
    items: function () { return items.length; } };
})();
