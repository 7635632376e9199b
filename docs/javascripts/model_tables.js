// The model zoo's tables (docs/hooks/zoo_tables.py writes them): sort by a click on a
// header, filter every family's rows with the search box. No library, nothing fetched.
(function () {
  "use strict";

  function cellValue(row, index) {
    const cell = row.cells[index];
    if (!cell) return "";
    return cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent.trim();
  }

  function sortTable(table, index, header) {
    const body = table.tBodies[0];
    const rows = Array.from(body.rows);
    const values = rows.map((row) => cellValue(row, index));
    const numeric = values.every((v) => v === "" || v === "-" || !Number.isNaN(Number(v)));
    const ascending = header.getAttribute("aria-sort") !== "ascending";
    const order = rows.map((row, i) => [row, values[i]]);
    order.sort((a, b) => {
      const x = a[1];
      const y = b[1];
      const xEmpty = x === "" || x === "-";
      const yEmpty = y === "" || y === "-";
      if (xEmpty || yEmpty) return xEmpty - yEmpty; // empty cells last, either way
      const c = numeric ? Number(x) - Number(y) : x.localeCompare(y, undefined, { numeric: true });
      return ascending ? c : -c;
    });
    for (const th of table.tHead.rows[0].cells) th.removeAttribute("aria-sort");
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    for (const [row] of order) body.appendChild(row);
  }

  function sectionHeading(table) {
    // The family's heading is the element before the table (or before its scroll wrapper).
    let node = table;
    while (node.parentElement && !node.previousElementSibling) node = node.parentElement;
    const before = node.previousElementSibling;
    return before && /^H[1-6]$/.test(before.tagName) ? before : null;
  }

  function filterTables(tables, text) {
    const words = text.toLowerCase().split(/\s+/).filter(Boolean);
    for (const table of tables) {
      let shown = 0;
      for (const row of table.tBodies[0].rows) {
        const content = row.textContent.toLowerCase();
        row.hidden = !words.every((w) => content.includes(w));
        if (!row.hidden) shown += 1;
      }
      table.hidden = shown === 0;
      const heading = sectionHeading(table);
      if (heading) heading.hidden = shown === 0;
    }
  }

  function setUp() {
    const tables = Array.from(document.querySelectorAll("table[data-zoo-models]"));
    for (const table of tables) {
      Array.from(table.tHead.rows[0].cells).forEach((header, index) => {
        if (header.dataset.zooSortable) return;
        header.dataset.zooSortable = "1";
        header.style.cursor = "pointer";
        header.title = "Sort by this column (click again to reverse)";
        header.addEventListener("click", () => sortTable(table, index, header));
      });
    }
    const box = document.querySelector("input[data-zoo-model-filter]");
    if (box && !box.dataset.zooReady) {
      box.dataset.zooReady = "1";
      box.addEventListener("input", () => filterTables(tables, box.value));
    }
  }

  if (typeof module !== "undefined" && module.exports) {
    // Node (tests/test_docs.py checks the sorting and filtering on a small stand-in DOM).
    module.exports = { sortTable, filterTables };
    return;
  }
  // mkdocs-material's instant loading announces each page on document$; without it, on load.
  if (typeof document$ !== "undefined") {
    document$.subscribe(setUp);
  } else if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setUp);
  } else {
    setUp();
  }
})();
