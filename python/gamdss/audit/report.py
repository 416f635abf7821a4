"""The audit report: Markdown or HTML with relative links to every plot and CSV."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

from gamdss.settings.reselection import KEYFRAMES


def _num(v: Any) -> str:
    if isinstance(v, float):
        return "–" if math.isnan(v) else f"{v:.2f}"
    return str(v)


def summary_table(summary: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the report's summary: per group, clips and for each keyframe
    mean/median/p90 |displacement| in frames and ms."""
    header = ["group by", "group", "clips"]
    for k in KEYFRAMES:
        header += [f"{k} moved", f"{k} mean/median/p90 (frames)", f"{k} mean/median/p90 (ms)"]
    header.append("mean over keyframes (ms, Eq. 17)")
    body = []
    for s in summary:
        row = [s["group_by"], s["group"], str(s["clips"])]
        for k in KEYFRAMES:
            row.append(f"{100 * s[f'{k}_moved_share']:.0f}%" if not math.isnan(s[f"{k}_moved_share"]) else "–")
            for unit in ("frames", "ms"):
                row.append(" / ".join(_num(s[f"{k}_{stat}_abs_{unit}"]) for stat in ("mean", "median", "p90")))
        row.append(_num(s["mean_abs_ms_eq17"]))
        body.append(row)
    return header, body


def render(sections: Sequence[dict[str, Any]], title: str, fmt: str) -> str:
    """``sections``: dicts with ``heading``, ``text`` (paragraphs), optional ``table``
    (header, rows), ``images`` (relative PNG paths) and ``links`` ((label, relative path))."""
    if fmt == "markdown":
        return _markdown(sections, title)
    if fmt == "html":
        return _html(sections, title)
    raise ValueError(f"unknown report format {fmt!r}; expected 'markdown' or 'html'")


def _markdown(sections, title) -> str:
    out = [f"# {title}", ""]
    for s in sections:
        out += [f"## {s['heading']}", ""]
        for p in s.get("text", []):
            out += [p, ""]
        if s.get("table"):
            header, rows = s["table"]
            out.append("| " + " | ".join(header) + " |")
            out.append("|" + "|".join("---" for _ in header) + "|")
            out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
            out.append("")
        for img in s.get("images", []):
            out += [f"![{img}]({img})", ""]
        if s.get("links"):
            out += [f"- [{label}]({path})" for label, path in s["links"]]
            out.append("")
    return "\n".join(out)


def _html(sections, title) -> str:
    e = html.escape
    out = [
        "<!DOCTYPE html>",
        "<html><head><meta charset='utf-8'>",
        f"<title>{e(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse;"
        "font-size:12px}td,th{border:1px solid #ccc;padding:3px 6px}img{max-width:100%}</style>",
        "</head><body>",
        f"<h1>{e(title)}</h1>",
    ]
    for s in sections:
        out.append(f"<h2>{e(s['heading'])}</h2>")
        out += [f"<p>{e(p)}</p>" for p in s.get("text", [])]
        if s.get("table"):
            header, rows = s["table"]
            out.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>")
            out += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows]
            out.append("</table>")
        out += [f"<p><img src='{e(img)}' alt='{e(img)}'></p>" for img in s.get("images", [])]
        if s.get("links"):
            out.append(
                "<ul>" + "".join(f"<li><a href='{e(p)}'>{e(label)}</a></li>" for label, p in s["links"]) + "</ul>"
            )
    out.append("</body></html>")
    return "\n".join(out)
