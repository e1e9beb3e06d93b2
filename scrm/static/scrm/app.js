/* 私域 SCRM: charts (ECharts, when installed), the segment builder, the mobile menu. */
(function () {
  "use strict";

  function initCharts(root) {
    if (!window.echarts) return;  // no charts installed: the tables beside them still show
    root.querySelectorAll("[data-chart]").forEach(function (el) {
      if (el.dataset.ready) return;
      el.dataset.ready = "1";
      var chart = window.echarts.init(el, null, { renderer: "svg" });
      chart.setOption(JSON.parse(el.dataset.chart));
    });
  }
  window.addEventListener("resize", function () {
    if (!window.echarts) return;
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      var chart = window.echarts.getInstanceByDom(el);
      if (chart) chart.resize();
    });
  });

  // The segment builder: the DOM is the state; every change writes the expression (JSON)
  // into the hidden input and asks the count endpoint again (debounced by hx-trigger).
  function children(el) {
    var box = el.querySelector(":scope > .sb-children");
    return box ? Array.prototype.slice.call(box.children) : [];
  }
  function role(el, name) { return el.querySelector('[data-role="' + name + '"]'); }
  function fieldValue(el) {
    var field = role(el, "field"), op = role(el, "op").value, raw = role(el, "value").value.trim();
    var type = field.options[field.selectedIndex].dataset.type;
    if (raw === "") return null;
    function one(text) {
      if (type === "number") { var n = Number(text); return isNaN(n) ? text : n; }
      if (type === "boolean") return text === "true" || text === "1" || text === "是";
      if (field.value === "birth_month") return parseInt(text, 10);
      return text;
    }
    var value;
    if (op === "between") value = raw.split(/[,，~]/).map(function (t) { return one(t.trim()); });
    else if (op === "in" || op === "not_in") value = raw.split(/[,，]/).map(function (t) { return one(t.trim()); });
    else value = one(raw);
    return { field: field.value, op: op, value: value };
  }
  function nodeJson(el) {
    var kind = el.dataset.kind;
    if (kind === "group") {
      var mode = el.querySelector(":scope > .sb-head .sb-mode").value;
      var kids = children(el).map(nodeJson).filter(function (k) { return k !== null; });
      if (!kids.length) return null;
      if (mode === "not") return { not: kids.length === 1 ? kids[0] : { any: kids } };
      var node = {}; node[mode] = kids; return node;
    }
    if (kind === "field") return fieldValue(el);
    var input = role(el, "value");
    if (!input || input.value === "") return null;
    if (kind === "json") { try { return JSON.parse(input.value); } catch (e) { return { invalid: input.value }; } }
    var leaf = {};
    if (kind === "tag") leaf.tag = parseInt(input.value, 10);
    else if (kind === "guide") leaf.guide = parseInt(input.value, 10);
    else if (input.value === "true") leaf[kind] = true;
    else leaf[kind] = input.value;
    return leaf;
  }
  function sync(builder) {
    var root = builder.querySelector(":scope > .sb-group");
    var expression = root ? nodeJson(root) : null;
    var target = document.getElementById(builder.dataset.target);
    target.value = expression ? JSON.stringify(expression) : "";
    if (window.htmx) window.htmx.trigger(target, "recount");
  }
  function addNode(builder, group, kind) {
    var template = builder.querySelector('template[data-kind="' + kind + '"]');
    if (!template) return;
    group.querySelector(":scope > .sb-children").appendChild(template.content.cloneNode(true));
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-sb]");
    if (!button) return;
    var builder = button.closest(".segment-builder");
    event.preventDefault();
    var action = button.dataset.sb;
    if (action === "remove") {
      var node = button.closest(".sb-leaf, .sb-group");
      if (node.parentElement.classList.contains("sb-children")) node.remove();
    } else if (action === "add") {
      var select = button.parentElement.querySelector(".sb-add-kind");
      addNode(builder, button.closest(".sb-group"), select.value);
    }
    sync(builder);
  });
  ["input", "change"].forEach(function (name) {
    document.addEventListener(name, function (event) {
      var builder = event.target.closest && event.target.closest(".segment-builder");
      if (builder && !event.target.classList.contains("sb-add-kind")) sync(builder);
    });
  });

  // Choosing a language is enough (the button stays for pages without this script).
  document.addEventListener("change", function (event) {
    var form = event.target.closest && event.target.closest(".scrm-language-switch");
    if (form) form.submit();
  });
  document.addEventListener("click", function (event) {
    if (event.target.closest(".menu-toggle")) document.body.classList.toggle("menu-open");
  });
  document.addEventListener("DOMContentLoaded", function () {
    initCharts(document);
    document.querySelectorAll(".segment-builder").forEach(sync);
  });
  document.addEventListener("htmx:afterSettle", function (event) { initCharts(event.target); });

  // Forms that ask first (data-confirm="..."): the CSP allows no inline onsubmit handlers.
  document.addEventListener("submit", function (event) {
    var text = event.target.dataset && event.target.dataset.confirm;
    if (text && !window.confirm(text)) event.preventDefault();
  }, true);
})();
