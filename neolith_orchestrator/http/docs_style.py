"""The stylesheet of `/docs`, served as `/docs/docs.css` (a separate file, as the
Content-Security-Policy allows no inline style). Kept in a module rather than a data file so
the wheel needs no package-data configuration to carry it."""

from __future__ import annotations

DOCS_CSS = """\
:root { color-scheme: light dark; --muted: #6b7280; --line: #d1d5db; }
body { font: 15px/1.5 system-ui, sans-serif; margin: 0 auto; max-width: 60rem; padding: 1rem; }
header { border-bottom: 1px solid var(--line); margin-bottom: 1rem; }
nav ul { display: flex; flex-wrap: wrap; gap: 1rem; list-style: none; padding: 0; }
h2 { border-bottom: 1px solid var(--line); margin-top: 2.5rem; text-transform: capitalize; }
h3 { font-size: 1.05rem; margin: 0 0 .25rem; }
h4 { font-size: .9rem; margin: .75rem 0 .25rem; }
section.op, section.schema {
  border: 1px solid var(--line); border-radius: 6px; margin: 1rem 0; padding: .75rem 1rem;
}
.auth { color: var(--muted); font-size: .9rem; margin: 0; }
.method {
  border-radius: 4px; color: #fff; display: inline-block; font-size: .8rem;
  margin-right: .5rem; min-width: 4.5rem; padding: .1rem .4rem; text-align: center;
}
.method.get { background: #2563eb; }
.method.post { background: #059669; }
.method.put { background: #d97706; }
.method.delete { background: #dc2626; }
table { border-collapse: collapse; font-size: .9rem; width: 100%; }
th, td { border-bottom: 1px solid var(--line); padding: .25rem .5rem; text-align: left; }
code { font-family: ui-monospace, monospace; }
em { color: var(--muted); font-size: .8rem; }
"""
