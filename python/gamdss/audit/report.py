"""The audit report: Markdown with relative links to every plot and CSV beside it, or one
self-contained HTML file (plots embedded as base64 PNG data URIs, the CSV numbers embedded as
downloads) that can be sent on its own."""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gamdss.settings.reselection import KEYFRAMES

#: side files (CSV, YAML) larger than this are named in the HTML report but not embedded
EMBED_LIMIT_BYTES = 4 * 2**20
_MIME = {".csv": "text/csv", ".yaml": "application/yaml", ".md": "text/markdown", ".txt": "text/plain"}
ONLY_GROUP = "only group"


def _num(v: Any) -> str:
    if isinstance(v, float):
        return "–" if math.isnan(v) else f"{v:.2f}"
    return str(v)


def single_group_keys(summary: Sequence[dict[str, Any]]) -> list[str]:
    """The ``group_by`` keys of ``summary`` (rows of :func:`gamdss.audit.tables.summary_rows`)
    under which every clip falls in one group: nothing to compare."""
    counts: dict[str, int] = {}
    for s in summary:
        if s["group_by"] != "-":
            counts[s["group_by"]] = counts.get(s["group_by"], 0) + 1
    return [k for k, n in counts.items() if n == 1]


def single_group_note(summary: Sequence[dict[str, Any]]) -> str:
    """A sentence for the report naming the keys with only one group ("" when there is none)."""
    keys = single_group_keys(summary)
    if not keys:
        return ""
    group = {s["group_by"]: s["group"] for s in summary if s["group_by"] in keys}
    listed = ", ".join(f"{k} (all clips are {group[k]!r})" for k in keys)
    return (
        f"Only one group under {listed}: there is nothing to compare there; the numbers are those of all "
        f"clips. Audit several caches together (e.g. CASME II with SAMM) or clips with subject metadata to compare groups."
    )


def summary_table(summary: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the report's summary: per group, clips and for each keyframe
    mean/median/p90 |displacement| in frames and ms. A group that is the only one of its
    key is marked ``(only group)``."""
    single = set(single_group_keys(summary))
    header = ["group by", "group", "clips"]
    for k in KEYFRAMES:
        header += [f"{k} moved", f"{k} mean/median/p90 (frames)", f"{k} mean/median/p90 (ms)"]
    header.append("mean over keyframes (ms, Eq. 17)")
    body = []
    for s in summary:
        group = f"{s['group']} ({ONLY_GROUP})" if s["group_by"] in single else str(s["group"])
        row = [s["group_by"], group, str(s["clips"])]
        for k in KEYFRAMES:
            row.append(f"{100 * s[f'{k}_moved_share']:.0f}%" if not math.isnan(s[f"{k}_moved_share"]) else "–")
            for unit in ("frames", "ms"):
                row.append(" / ".join(_num(s[f"{k}_{stat}_abs_{unit}"]) for stat in ("mean", "median", "p90")))
        row.append(_num(s["mean_abs_ms_eq17"]))
        body.append(row)
    return header, body


def render(sections: Sequence[dict[str, Any]], title: str, fmt: str, base: str | Path | None = None) -> str:
    """``sections``: dicts with ``heading``, ``text`` (paragraphs), optional ``table``
    (header, rows), ``images`` (PNG paths relative to ``base``) and ``links`` ((label, path
    relative to ``base``)).

    Markdown links the files; HTML (which needs ``base``, the report's folder) embeds the PNGs
    as ``data:image/png;base64`` URIs and the linked CSV/YAML files (up to
    :data:`EMBED_LIMIT_BYTES` each) as data-URI downloads, so that the one file holds everything."""
    if fmt == "markdown":
        return _markdown(sections, title)
    if fmt == "html":
        if base is None:
            raise ValueError("an HTML report embeds its images: give base, the folder they are in")
        return _html(sections, title, Path(base))
    raise ValueError(f"unknown report format {fmt!r}; expected 'markdown' or 'html'")


def _markdown(sections, title) -> str:
    out = [f"# {title}", ""]
    for s in sections:
        out += [f"## {s['heading']}", ""]
        for p in s.get("text", []):
            if p:
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


def data_uri(path: Path, mime: str) -> str:
    """``data:<mime>;base64,...`` of the bytes of ``path``."""
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _html_link(base: Path, label: str, rel: str) -> str:
    """A download link holding the file itself, or the file's name alone (an image shown above,
    a file over the limit, a missing one)."""
    e = html.escape
    path = base / rel
    mime = _MIME.get(path.suffix.lower())
    if mime is None or not path.is_file() or path.stat().st_size > EMBED_LIMIT_BYTES:
        why = "shown above" if path.suffix.lower() == ".png" else "beside the report"
        return f"<li>{e(label)} <small>({e(rel)}, {why})</small></li>"
    name = Path(rel).name
    return f"<li><a download='{e(name)}' href='{data_uri(path, mime)}'>{e(label)}</a></li>"


def _html(sections, title, base: Path) -> str:
    e = html.escape
    out = [
        "<!DOCTYPE html>",
        "<html><head><meta charset='utf-8'>",
        f"<title>{e(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse;"
        "font-size:12px}td,th{border:1px solid #ccc;padding:3px 6px}img{max-width:100%}</style>",
        "</head><body>",
        f"<h1>{e(title)}</h1>",
        "<p><small>One self-contained file: the plots are embedded, and each CSV link downloads the numbers "
        "it names.</small></p>",
    ]
    for s in sections:
        out.append(f"<h2>{e(s['heading'])}</h2>")
        out += [f"<p>{e(p)}</p>" for p in s.get("text", []) if p]
        if s.get("table"):
            header, rows = s["table"]
            out.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>")
            out += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows]
            out.append("</table>")
        for img in s.get("images", []):
            out.append(f"<figure><img src='{data_uri(base / img, 'image/png')}' alt='{e(img)}'>")
            out.append(f"<figcaption><small>{e(img)}</small></figcaption></figure>")
        if s.get("links"):
            out.append("<ul>" + "".join(_html_link(base, label, p) for label, p in s["links"]) + "</ul>")
    out.append("</body></html>")
    return "\n".join(out)
