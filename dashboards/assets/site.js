/* tokenwatt site: embeds the page's Vega-Lite specs (from #tw-specs) and wires the chip selector.
   window.TW reports progress for people and for the browser test: {total, done, failed, ready, views}. */
(function () {
  "use strict";
  var TW = (window.TW = { total: 0, done: 0, failed: [], ready: false, views: {}, filters: {} });
  var OPTS = {
    renderer: "svg",
    actions: { export: true, source: false, compiled: false, editor: false },
    tooltip: true,
  };

  function applyChip(chip, vendor) {
    var jobs = [];
    Object.keys(TW.views).forEach(function (name) {
      var f = TW.filters[name];
      if (!f) return;
      var view = TW.views[name];
      view.signal("tw_chip", chip).signal("tw_vendor", vendor);
      jobs.push(view.runAsync());
    });
    return Promise.all(jobs);
  }
  TW.applyChip = applyChip;

  function start() {
    var el = document.getElementById("tw-specs");
    var specs = el ? JSON.parse(el.textContent) : {};
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
      var sel = document.getElementById("tw-chip");
      if (sel) {
        var saved = null;
        try { saved = window.sessionStorage.getItem("tw-chip"); } catch (e) { saved = null; }
        sel.addEventListener("change", function () {
          var opt = sel.options[sel.selectedIndex];
          try { window.sessionStorage.setItem("tw-chip", sel.value); } catch (e) { /* file:// without storage */ }
          applyChip(sel.value, opt.getAttribute("data-vendor") || "all");
        });
        var known = Array.prototype.some.call(sel.options, function (o) { return o.value === saved; });
        if (saved && saved !== "all" && known) {
          sel.value = saved;
          var o = sel.options[sel.selectedIndex];
          return applyChip(saved, o.getAttribute("data-vendor") || "all");
        }
      }
    }).then(function () { TW.ready = true; }, function () { TW.ready = true; });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
