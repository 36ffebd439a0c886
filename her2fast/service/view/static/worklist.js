// her2fast view: sort the worklist by a column (click its header) and filter it (text and status).
"use strict";
(function () {
  const table = document.getElementById("worklist");
  if (!table) return;
  const body = table.tBodies[0];
  let sortKey = null;
  let ascending = true;

  table.querySelectorAll("th[data-key]").forEach(function (th) {
    th.tabIndex = 0;
    th.addEventListener("click", function () {
      const key = th.dataset.key;
      ascending = sortKey === key ? !ascending : true;
      sortKey = key;
      const numeric = th.dataset.type === "number";
      const rows = Array.from(body.rows);
      rows.sort(function (a, b) {
        const x = a.dataset[key] || "";
        const y = b.dataset[key] || "";
        let c;
        if (numeric) {
          const nx = x === "" ? -Infinity : Number(x);
          const ny = y === "" ? -Infinity : Number(y);
          c = nx - ny;
        } else {
          c = x.localeCompare(y, undefined, { numeric: true });
        }
        return ascending ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
      table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    });
  });

  const text = document.getElementById("filter");
  const status = document.getElementById("status-filter");
  function filter() {
    const q = text.value.trim().toLowerCase();
    const s = status.value;
    Array.from(body.rows).forEach(function (r) {
      const hay = (r.dataset.name + " " + r.dataset.score + " " + r.dataset.stratum + " " + r.dataset.flags + " " + r.dataset.status).toLowerCase();
      r.hidden = (q !== "" && hay.indexOf(q) < 0) || (s !== "" && r.dataset.status !== s);
    });
  }
  text.addEventListener("input", filter);
  status.addEventListener("change", filter);
})();
