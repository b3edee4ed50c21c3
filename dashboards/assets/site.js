/* tokenwatt site: embeds the page's Vega-Lite specs (from #tw-specs), wires the filters (chip, model,
   date range) and draws the live cards and tables (from #tw-live) for the current selection.
   The selection lives in the URL hash (#chip=..&model=..&from=YYYY-MM-DD&to=YYYY-MM-DD), so it is
   carried to the next page by the navigation links and survives a reload; no network, no cookies.
   Names are data: every cell and label is set with textContent, never as HTML.
   window.TW reports progress for people and for the browser test:
   {total, done, failed, ready, views, filters, state, live}. */
(function () {
  "use strict";
  var TW = (window.TW = { total: 0, done: 0, failed: [], ready: false, views: {}, filters: {},
                          state: { chip: "all", vendor: "all", model: "all", from: "", to: "" }, live: {} });
  var OPTS = {
    renderer: "svg",
    actions: { export: true, source: false, compiled: false, editor: false },
    tooltip: true,
  };
  var FAR = { from: "0000-01-01", to: "9999-12-31" };

  // ------------------------------------------------------------------------------------ selection

  function readHash() {
    var out = {};
    (window.location.hash || "").replace(/^#/, "").split("&").forEach(function (kv) {
      if (!kv) return;
      var i = kv.indexOf("=");
      if (i < 0) return;
      try { out[decodeURIComponent(kv.slice(0, i))] = decodeURIComponent(kv.slice(i + 1)); } catch (e) { /* bad */ }
    });
    return out;
  }

  function hashOf(s) {
    var parts = [];
    ["chip", "vendor", "model", "from", "to"].forEach(function (k) {
      if (s[k] && s[k] !== "all") parts.push(k + "=" + encodeURIComponent(s[k]));
    });
    return parts.length ? "#" + parts.join("&") : "";
  }

  function saveState() {
    var h = hashOf(TW.state);
    try { window.history.replaceState(null, "", window.location.pathname + window.location.search + h); }
    catch (e) { /* file:// in some browsers */ }
    try { window.sessionStorage.setItem("tw-state", JSON.stringify(TW.state)); } catch (e) { /* no storage */ }
    document.querySelectorAll("header nav a").forEach(function (a) {
      a.setAttribute("href", a.getAttribute("href").split("#")[0] + h);
    });
  }

  function optionValues(sel) { return Array.prototype.map.call(sel.options, function (o) { return o.value; }); }

  function initialState() {
    var s = readHash();
    if (!Object.keys(s).length) {
      try { s = JSON.parse(window.sessionStorage.getItem("tw-state") || "{}") || {}; } catch (e) { s = {}; }
    }
    var chip = document.getElementById("tw-chip"), model = document.getElementById("tw-model");
    if (chip && s.chip && optionValues(chip).indexOf(s.chip) >= 0) chip.value = s.chip;
    if (model && s.model && optionValues(model).indexOf(s.model) >= 0) model.value = s.model;
    var iso = /^\d{4}-\d{2}-\d{2}$/;
    ["from", "to"].forEach(function (k) {
      var el = document.getElementById("tw-" + k);
      if (el && s[k] && iso.test(s[k])) el.value = s[k];
    });
    // a page without a control (the forecast has no chip) keeps the selection to hand it on
    var st = TW.state;
    if (!chip && typeof s.chip === "string") { st.chip = s.chip; st.vendor = s.vendor || "all"; }
    if (!model && typeof s.model === "string") st.model = s.model;
    ["from", "to"].forEach(function (k) {
      if (!document.getElementById("tw-" + k) && typeof s[k] === "string" && iso.test(s[k])) st[k] = s[k];
    });
  }

  function readControls() {
    var chip = document.getElementById("tw-chip"), model = document.getElementById("tw-model");
    var from = document.getElementById("tw-from"), to = document.getElementById("tw-to");
    var st = TW.state;
    if (chip) {
      st.chip = chip.value;
      st.vendor = chip.options[chip.selectedIndex].getAttribute("data-vendor") || "all";
    }
    if (model) st.model = model.value;
    if (from) st.from = from.value && from.value !== from.min ? from.value : "";
    if (to) st.to = to.value && to.value !== to.max ? to.value : "";
    if (st.from && st.to && st.from > st.to) { var t = st.from; st.from = st.to; st.to = t; }
  }

  function apply() {
    var st = TW.state, jobs = [];
    Object.keys(TW.views).forEach(function (name) {
      if (!TW.filters[name]) return;
      var view = TW.views[name];
      view.signal("tw_chip", st.chip).signal("tw_vendor", st.vendor).signal("tw_model", st.model)
          .signal("tw_from", st.from || FAR.from).signal("tw_to", st.to || FAR.to);
      jobs.push(view.runAsync());
    });
    Object.keys(TW.live).forEach(function (name) { drawLive(name); });
    // a set filter makes the "does not follow the ... filter" lines under the other blocks stand out
    var on = st.chip !== "all" || st.model !== "all" || !!st.from || !!st.to;
    if (document.body) document.body.classList.toggle("tw-filtered", on);
    return Promise.all(jobs);
  }
  TW.apply = function () { readControls(); saveState(); return apply(); };
  TW.applyChip = function (chip) {  // kept for scripts written against the first site
    var sel = document.getElementById("tw-chip");
    if (sel) sel.value = chip;
    return TW.apply();
  };

  // ------------------------------------------------------------------------------------ live blocks

  function fmt(x, kind) {
    if (x === null || x === undefined || !isFinite(x)) return "\u2013";
    var neg = x < 0, a = Math.abs(x);
    function fixed(v, d) { return v.toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d }); }
    switch (kind) {
      case "big":
        var units = [[1e12, " T"], [1e9, " B"], [1e6, " M"], [1e3, " k"]];
        for (var i = 0; i < units.length; i++) if (a >= units[i][0]) return (neg ? "-" : "") + fixed(a / units[i][0], 1) + units[i][1];
        return (neg ? "-" : "") + fixed(a, 0);
      case "usd": return (neg ? "\u2212" : "") + "$" + fixed(a, 2);
      case "usd3": return (neg ? "\u2212" : "") + "$" + fixed(a, 3);
      case "pct1": return (neg ? "-" : "") + fixed(a, 1) + " %";
      case "num0": return (neg ? "-" : "") + fixed(a, 0);
      case "num1": return (neg ? "-" : "") + fixed(a, 1);
      case "num2": return (neg ? "-" : "") + fixed(a, 2);
      case "num3": return (neg ? "-" : "") + fixed(a, 3);
      case "num4": return (neg ? "-" : "") + fixed(a, 4);
      case "times2": return (neg ? "-" : "") + "\u00d7" + fixed(a, 2);
      default: return String(x);
    }
  }
  TW.fmt = fmt;

  function rowsOf(live) {
    var st = TW.state, c = live.data, n = c[live.dims[0]] ? c[live.dims[0]].length : (c.date || []).length;
    var out = [], keep = live.keep_null || [];  // a null in a keep_null column matches every selection
    function any(k, i) { return keep.indexOf(k) >= 0 && c[k][i] === null; }
    for (var i = 0; i < n; i++) {
      if (st.chip !== "all" && c.chip && c.chip[i] !== st.chip && !any("chip", i)) continue;
      if (st.vendor !== "all" && !c.chip && c.vendor && c.vendor[i] !== st.vendor) continue;
      if (st.model !== "all" && c.model && c.model[i] !== st.model && !any("model", i)) continue;
      if (st.from && c.date && !any("date", i) && !(c.date[i] >= st.from)) continue;
      if (st.to && c.date && !any("date", i) && !(c.date[i] <= st.to)) continue;
      out.push(i);
    }
    return out;
  }

  // one group's measures from the rows at indexes idx
  function measures(live, idx, all) {
    var c = live.data, sums = {};
    live.sums.forEach(function (f) {
      var s = 0;
      idx.forEach(function (i) { s += c[f][i]; });
      sums[f] = s;
    });
    var out = {};
    live.measures.forEach(function (m) {
      var v = null;
      if (m.sum) v = sums[m.sum];
      else if (m.ratio) v = sums[m.ratio[1]] ? sums[m.ratio[0]] / sums[m.ratio[1]] * (m.k || 1) : null;
      else if (m.diff) v = sums[m.diff[0]] - sums[m.diff[1]];
      else if (m.share) v = all && all[m.share] ? sums[m.share] / all[m.share] * 100 : null;
      else if (m.max) idx.forEach(function (i) { var x = c[m.max][i]; if (x !== null && (v === null || x > v)) v = x; });
      out[m.name] = v;
    });
    out.__sums = sums;
    return out;
  }

  function groups(live, idx) {
    var c = live.data, by = {}, keys = [];
    idx.forEach(function (i) {
      var k = live.group.map(function (g) { return c[g][i]; });
      var key = JSON.stringify(k);
      if (!by[key]) { by[key] = { key: k, idx: [] }; keys.push(key); }
      by[key].idx.push(i);
    });
    return keys.map(function (k) { return by[k]; });
  }

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }

  function drawCards(live, box) {
    var m = measures(live, rowsOf(live), null);
    box.textContent = "";
    var wrap = el("div", null, "kpis");
    live.cards.forEach(function (card) {
      var v = m[card.value], k = el("div", null, "kpi");
      var label = card.label_if_negative && v < 0 ? card.label_if_negative : card.label;
      k.appendChild(el("div", label, "kpi-label"));
      k.appendChild(el("div", fmt(card.abs ? Math.abs(v) : v, card.fmt) + (card.unit || ""), "kpi-value"));
      var sub = card.sub_if_negative && v < 0 ? card.sub_if_negative : card.sub;
      var subv = card.sub_value ? fmt(m[card.sub_value], card.sub_fmt) : "";
      k.appendChild(el("div", (sub || "").replace("{}", subv), "kpi-sub"));
      k.setAttribute("data-card", card.value);
      k.setAttribute("data-value", v === null ? "" : String(v));
      wrap.appendChild(k);
    });
    box.appendChild(wrap);
  }

  function tableRows(live) {
    var idx = rowsOf(live), all = measures(live, idx, null).__sums;
    var rows = groups(live, idx).map(function (g) {
      var m = measures(live, g.idx, all), r = {};
      live.group.forEach(function (name, j) { r[name] = g.key[j]; });
      live.measures.forEach(function (mm) { r[mm.name] = m[mm.name]; });
      return r;
    });
    var total = null;
    if (live.total && rows.length) {
      var m = measures(live, idx, all);
      total = {};
      live.group.forEach(function (name, j) { total[name] = j === 0 ? live.total : "all"; });
      live.measures.forEach(function (mm) { total[mm.name] = m[mm.name]; });
    }
    return { rows: rows, total: total };
  }

  function sortRows(live, rows) {
    var s = live.sort || { col: live.columns[0].key, desc: false };
    var order = live.order || {};
    rows.sort(function (a, b) {
      var x = a[s.col], y = b[s.col];
      if (order[s.col]) { x = order[s.col].indexOf(x); y = order[s.col].indexOf(y); }
      if (x === y) return 0;
      if (x === null || x === undefined) return 1;
      if (y === null || y === undefined) return -1;
      var r = x < y ? -1 : 1;
      return s.desc ? -r : r;
    });
    return rows;
  }

  function drawTable(name, live, box) {
    var t = tableRows(live), rows = sortRows(live, t.rows);
    box.textContent = "";
    var table = el("table", null, "tw-table" + (live.sortable ? " sortable" : ""));
    var head = el("thead"), tr = el("tr");
    live.columns.forEach(function (col) {
      var th = el("th", col.label, col.fmt ? "num" : null);
      th.setAttribute("scope", "col");
      th.setAttribute("data-key", col.key);
      if (live.sortable) {
        var s = live.sort || {};
        th.setAttribute("aria-sort", s.col === col.key ? (s.desc ? "descending" : "ascending") : "none");
        th.tabIndex = 0;
        var go = function () {
          var cur = live.sort || {};
          live.sort = { col: col.key, desc: cur.col === col.key ? !cur.desc : !!col.fmt };
          drawTable(name, live, box);
        };
        th.addEventListener("click", go);
        th.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); go(); } });
      }
      tr.appendChild(th);
    });
    head.appendChild(tr);
    table.appendChild(head);
    var body = el("tbody");
    var all = t.total ? rows.concat([t.total]) : rows;
    all.forEach(function (r, ri) {
      var row = el("tr", null, t.total && ri === all.length - 1 ? "total" : null);
      live.columns.forEach(function (col) {
        var v = r[col.key], td = el("td", null, col.fmt ? "num" : (col.wrap ? "wrap" : null));
        if (col.swatch && live.colors && live.colors[v]) {
          var sw = el("span", null, "sw");
          sw.style.background = live.colors[v];
          td.appendChild(sw);
        }
        td.appendChild(document.createTextNode(col.fmt ? fmt(v, col.fmt) : (v === null || v === undefined ? (col.null_text || "\u2013") : String(v))));
        if (col.fmt) td.setAttribute("data-value", v === null || v === undefined ? "" : String(v));
        row.appendChild(td);
      });
      body.appendChild(row);
    });
    table.appendChild(body);
    if (live.caption) { var cap = el("caption", live.caption); table.appendChild(cap); }
    box.appendChild(table);
    if (!rows.length) box.appendChild(el("div", "No rows for this selection.", "note info"));
    if (live.csv) {
      var a = el("a", "Data (CSV) for this selection", "csv");
      a.href = "#";
      a.addEventListener("click", function (e) { e.preventDefault(); download(live.csv, toCsv(live, rows)); });
      var p = el("div", null, "dl"); p.appendChild(a);
      // in a scrolling table the link goes above the rows, where it is seen without scrolling
      if (live.scroll) box.insertBefore(p, box.firstChild); else box.appendChild(p);
    }
    TW.live[name].rows = rows;
  }

  function csvCell(v) {
    var s = v === null || v === undefined ? "" : String(v);
    if (/^[=+\-@\t\r]/.test(s) && isNaN(Number(s))) s = "'" + s;  // no formulas in a spreadsheet
    return /[",\n\r]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  }

  function toCsv(live, rows) {
    var lines = [live.columns.map(function (c) { return csvCell(c.key); }).join(",")];
    rows.forEach(function (r) { lines.push(live.columns.map(function (c) { return csvCell(r[c.key]); }).join(",")); });
    return lines.join("\n") + "\n";
  }
  TW.csv = function (name) { return toCsv(TW.live[name], TW.live[name].rows || []); };

  function download(name, text) {
    var url = URL.createObjectURL(new Blob([text], { type: "text/csv" }));
    var a = document.createElement("a");
    a.href = url; a.download = name;
    document.body.appendChild(a); a.click(); a.remove();
    setTimeout(function () { URL.revokeObjectURL(url); }, 1000);
  }

  function drawLive(name) {
    var live = TW.live[name], box = document.getElementById("live-" + name);
    if (!box) return;
    if (live.kind === "cards") drawCards(live, box);
    else drawTable(name, live, box);
  }

  // ------------------------------------------------------------------------------------ start

  function start() {
    var el0 = document.getElementById("tw-specs");
    var specs = el0 ? JSON.parse(el0.textContent) : {};
    var dt = document.getElementById("tw-data");
    var shared = dt ? JSON.parse(dt.textContent) : {};
    // a chart's datasets, kept once per page as columns (dashboards/site.py _shared_datasets): fresh
    // row objects for each chart, since a Vega view tags the tuples it ingests
    function rowsOf(name) {
      var d = shared[name], cols = {}, rows = new Array(d.n);
      Object.keys(d.columns).forEach(function (k) {
        var col = d.columns[k];
        cols[k] = (col && !Array.isArray(col) && col.codes)
          ? col.codes.map(function (i) { return col.values[i]; }) : col;
      });
      var keys = Object.keys(cols);
      for (var i = 0; i < d.n; i++) {
        var r = {};
        for (var j = 0; j < keys.length; j++) r[keys[j]] = cols[keys[j]][i];
        rows[i] = r;
      }
      return rows;
    }
    Object.keys(specs).forEach(function (name) {
      var entry = specs[name];
      (entry.datasets || []).forEach(function (n) {
        entry.spec.datasets = entry.spec.datasets || {};
        entry.spec.datasets[n] = rowsOf(n);
      });
    });
    var lv = document.getElementById("tw-live");
    TW.live = lv ? JSON.parse(lv.textContent) : {};
    Object.keys(TW.live).forEach(function (name) {  // dictionary-coded text columns
      var d = TW.live[name].data;
      Object.keys(d).forEach(function (k) {
        var col = d[k];
        if (col && !Array.isArray(col) && col.codes) d[k] = col.codes.map(function (i) { return col.values[i]; });
      });
    });
    initialState();
    readControls();
    saveState();
    Object.keys(TW.live).forEach(drawLive);
    var names = Object.keys(specs);
    TW.total = names.length;
    var jobs = names.map(function (name) {
      var entry = specs[name];
      TW.filters[name] = entry.filter || null;
      var opts = Object.assign({}, OPTS, { downloadFileName: name });
      return vegaEmbed("#chart-" + name, entry.spec, opts)
        .then(function (res) {
          TW.views[name] = res.view;
          TW.done += 1;
        })
        .catch(function (err) {
          TW.failed.push(name + ": " + err);
          console.error("chart " + name + " failed:", err);
          var box = document.getElementById("chart-" + name);
          if (box) box.textContent = "This chart could not be drawn: " + err;
        });
    });
    Promise.all(jobs).then(function () {
      ["tw-chip", "tw-model", "tw-from", "tw-to"].forEach(function (id) {
        var c = document.getElementById(id);
        if (c) c.addEventListener("change", TW.apply);
      });
      var reset = document.getElementById("tw-reset");
      if (reset) reset.addEventListener("click", function () {
        ["tw-chip", "tw-model"].forEach(function (id) { var c = document.getElementById(id); if (c) c.value = "all"; });
        var f = document.getElementById("tw-from"), t = document.getElementById("tw-to");
        if (f) f.value = f.min; if (t) t.value = t.max;
        TW.apply();
      });
      return apply();
    }).then(function () { TW.ready = true; }, function () { TW.ready = true; });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
