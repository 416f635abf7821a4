"""Pooled LOSO results and the files that report them.

Predictions of all folds are concatenated and scored once per prediction mode (``rise``,
``fall``, ``fused``) with :func:`gamdss.train.metrics.pooled_metrics`. Files written into the
run folder (every one names the protocol that made it; the ``released`` protocol's are marked
"test-subject selection (optimistic; for comparison only)"):

- ``results.json``: settings, pooled metrics per mode (and per dataset of a composite), per-fold table;
- ``predictions.csv``: one row per held-out sample: fold, true label, keyframes used, the
  prediction and class probabilities of each mode;
- ``folds.csv``: one row per fold (per-fold scores are for inspection; the pooled ones are the result);
- ``table.md`` / ``table.tex``: the layout of the paper's Tables II-III (rows: model and mode;
  columns: dataset setting, ACC / UF1 / UAR in %); when the results pool fewer folds than
  the plan has (``num_folds`` of ``num_planned_folds`` in ``results.json``, ``missing_folds``
  naming the others) both say so (:func:`coverage_note`);
- ``per_class_<mode>.csv`` and ``confusion_<mode>.png``; ``tsne_<phase>.png`` / ``.csv``
  (``run.tsne``). A phase this run writes no t-SNE for (``run.tsne`` false, or features
  missing) loses the ``tsne_<phase>`` files an earlier run wrote, so none describes other
  results.

Modes are labelled so that they cannot be misread (:data:`MODE_LABELS`, :data:`MODE_NOTE`):
``fused (rise+fall)`` is the mean of both branches' probabilities. The paper's "full" model
is the RISE prediction of the model trained with both losses: compare it with the ``rise``
row of a two-phase run, not with the fused row.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from gamdss.train.config import RELEASED_NOTE, TrainConfig
from gamdss.train.layout import ALL_PHASES, fold_paths, mode_files, tsne_files
from gamdss.train.metrics import confusion_matrix, metrics_from_confusion, pooled_metrics
from gamdss.train.tsne import tsne_plot
from gamdss.util import atomic
from gamdss.util.csv_rows import rows_to_csv

RESULTS_FORMAT = "gamdss-loso-results"
#: Row labels of the prediction modes in tables and printed summaries.
MODE_LABELS = {"rise": "rise", "fall": "fall", "fused": "fused (rise+fall)"}
#: What the labels mean; printed under every table.
MODE_NOTE = (
    "rise, fall: the prediction of that branch alone; fused (rise+fall): the mean of both branches' "
    "probabilities. The paper's 'full' model is the rise prediction of the model trained with both "
    "losses (compare with the rise row of a two-phase run, not the fused row)."
)
SETTING_NAMES = {
    "casme2-5": "CASME II 5-class",
    "casme2-3": "CASME II 3-class",
    "samm-5": "SAMM 5-class",
    "samm-3": "SAMM 3-class",
    "casme3-7": "CAS(ME)3 7-class",
    "casme3-4": "CAS(ME)3 4-class",
    "casme3-3": "CAS(ME)3 3-class",
    "megc2019": "MEGC2019 composite 3-class",
}


def protocol_description(protocol: str) -> str:
    """One line that every results file carries."""
    if protocol == "honest":
        return "LOSO, honest protocol: fixed epochs, last epoch's model (no selection on the held-out subject)"
    if protocol == "inner_val":
        return (
            "LOSO, honest protocol with an inner validation split of the training subjects for epoch "
            "selection (no selection on the held-out subject)"
        )
    return f"LOSO, RELEASED protocol: per-fold best epoch chosen on the held-out subject, {RELEASED_NOTE}"


def pool(
    records: Sequence[dict[str, Any]], modes: Sequence[str], num_classes: int, class_names: Sequence[str], protocol: str
) -> dict[str, Any]:
    """Pooled metrics per mode from fold records (see module doc).

    For the released protocol, ``acc`` comes from each fold's best-accuracy epoch and ``uf1``,
    ``uar`` from its best-F1 epoch, as the released code reports them.
    """
    labels = np.array([t["label"] for r in records for t in r["test"]], dtype=np.int64)
    out = {}
    for m in modes:
        pred = np.array([t["pred"][m] for r in records for t in r["test"]], dtype=np.int64)
        metrics = pooled_metrics(labels, pred, num_classes, class_names)
        if protocol == "released":
            acc_pred = np.array([p for r in records for p in r["released"]["acc_pred"][m]], dtype=np.int64)
            metrics["acc"] = float(np.mean(acc_pred == labels)) if len(labels) else float("nan")
            metrics["acc_note"] = "from each fold's best-test-accuracy epoch; uf1/uar from its best-test-F1 epoch"
        out[m] = metrics
    return out


def chance_level(metrics: dict[str, Any]) -> tuple[float, float]:
    """(ACC, UAR) of always predicting the most frequent true class, from the ``per_class``
    rows of :func:`gamdss.train.metrics.pooled_metrics`: ACC = largest support / samples,
    UAR = 1 / number of classes with a true sample."""
    support = [r["support"] for r in metrics["per_class"]]
    n, present = sum(support), sum(1 for c in support if c > 0)
    return (max(support) / n if n else float("nan"), 1.0 / present if present else float("nan"))


def collapsed_modes(
    records: Sequence[dict[str, Any]], modes: Sequence[str], class_names: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """The modes whose pooled held-out predictions are all one class although the labels are
    not: mode -> ``{"class": name, "samples": n, "folds": [subjects whose own predictions were
    all that class]}``."""
    labels = {t["label"] for r in records for t in r["test"]}
    out = {}
    for m in modes:
        pred = {t["pred"][m] for r in records for t in r["test"]}
        if len(pred) == 1 and len(labels) > 1:
            out[m] = {
                "class": class_names[pred.pop()],
                "samples": sum(len(r["test"]) for r in records),
                "folds": [r["subject"] for r in records if r["test"]],
            }
    return out


def collapse_warning(name: str, mode: str, collapsed: dict[str, Any]) -> str:
    """The one line :func:`write_results` prints (on stderr) for a collapsed mode."""
    folds = collapsed["folds"]
    where = (
        f"fold {folds[0]}"
        if len(folds) == 1
        else f"all {len(folds)} folds ({', '.join(folds[:3])}{', ...' if len(folds) > 3 else ''})"
    )
    return (
        f"gamdss: warning: {name}: the {MODE_LABELS[mode]} predictions collapsed to one class "
        f"({collapsed['class']}) for all {collapsed['samples']} held-out samples of {where}: the model "
        f"learned no difference between the classes (train longer, change optim.lr, or give more data)"
    )


def write_results(out: str | Path, plan, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Write all results files of a finished run into ``out``; returns the results dict.

    Warns (one line per mode on stderr, :func:`collapse_warning`; ``collapsed`` in
    ``results.json``) when a mode's predictions collapsed to one class."""
    out = Path(out)
    cfg: TrainConfig = plan.config
    protocol = cfg.evaluation.protocol
    described = protocol_description(protocol)
    modes = cfg.modes
    planned = plan.planned_folds
    finished = {r["subject"] for r in records}
    pooled = pool(records, modes, plan.num_classes, plan.class_names, protocol)
    datasets = sorted({t["dataset"] for r in records for t in r["test"]})
    per_dataset = {}
    if len(datasets) > 1:
        for d in datasets:
            sub = [{**r, "test": [t for t in r["test"] if t["dataset"] == d]} for r in records]
            if protocol == "released":  # per-dataset released accuracy is not defined by the released code
                per_dataset[d] = {
                    m: {
                        k: v
                        for k, v in pooled_metrics(
                            [t["label"] for s in sub for t in s["test"]],
                            [t["pred"][m] for s in sub for t in s["test"]],
                            plan.num_classes,
                            plan.class_names,
                        ).items()
                        if k in ("uf1", "uar", "num_samples")
                    }
                    for m in modes
                }
            else:
                per_dataset[d] = pool(sub, modes, plan.num_classes, plan.class_names, protocol)
    fold_rows = []
    for r in records:
        labels = [t["label"] for t in r["test"]]
        row: dict[str, Any] = {
            "protocol": protocol,
            "subject": r["subject"],
            "seed": r["seed"],
            "num_train": r["num_train"],
            "num_val": r["num_val"],
            "num_test": r["num_test"],
            "epochs_run": r["epochs_run"],
            "selected": json.dumps(r["selected"]),
        }
        for m in modes:
            fm = metrics_from_confusion(confusion_matrix(labels, [t["pred"][m] for t in r["test"]], plan.num_classes))
            row[f"{m}_acc"], row[f"{m}_uf1"] = fm["acc"], fm["uf1"]
        fold_rows.append(row)

    results = {
        "format": RESULTS_FORMAT,
        "version": 1,
        "protocol": protocol,
        "protocol_description": described,
        "optimistic": protocol == "released",
        "name": cfg.name,
        "model": cfg.model.name,
        "setting": cfg.data.protocol,
        "class_names": plan.class_names,
        "num_samples": int(sum(r["num_test"] for r in records)),
        "num_folds": len(records),
        "num_planned_folds": len(planned),
        "missing_folds": [f.subject for f in planned if f.subject not in finished],
        "num_dropped": len(plan.dropped),
        "modes": pooled,
        "per_dataset": per_dataset,
        "folds": fold_rows,
        "collapsed": collapsed_modes(records, modes, plan.class_names),
        "mode_labels": {m: MODE_LABELS[m] for m in modes},
        "mode_note": MODE_NOTE,
        "reselection_settings": getattr(plan, "reselection_settings", None),
        "config": cfg.to_dict(),
    }
    for m, collapsed in results["collapsed"].items():
        print(collapse_warning(cfg.name, m, collapsed), file=sys.stderr, flush=True)
    if protocol == "released":
        results["warning"] = RELEASED_NOTE
    atomic.write_text(out / "results.json", json.dumps(results, indent=1))
    atomic.write_text(
        out / "predictions.csv", rows_to_csv(_prediction_rows(records, modes, plan.class_names, protocol))
    )
    atomic.write_text(out / "folds.csv", rows_to_csv(fold_rows))
    md, tex = paper_tables([results])
    atomic.write_text(out / "table.md", md)
    atomic.write_text(out / "table.tex", tex)
    for m in modes:
        report = [{"protocol": protocol, **{k: v for k, v in row.items()}} for row in pooled[m]["per_class"]]
        per_class_csv, confusion_png = mode_files(out, m)
        atomic.write_text(per_class_csv, rows_to_csv(report))
        plot_confusion(
            np.array(pooled[m]["confusion_matrix"]),
            plan.class_names,
            confusion_png,
            title=f"{cfg.name}: {cfg.data.protocol}, {MODE_LABELS[m]}\n{_short(protocol)}",
        )
    written = _write_tsne(out, records, plan, cfg) if cfg.run.tsne else set()
    for phase in ALL_PHASES:
        if phase not in written:
            for path in tsne_files(out, phase):
                path.unlink(missing_ok=True)
    return results


def _short(protocol: str) -> str:
    return {
        "honest": "honest LOSO (last epoch)",
        "inner_val": "honest LOSO (inner validation)",
        "released": f"released protocol: {RELEASED_NOTE}",
    }[protocol]


def _prediction_rows(records, modes, class_names, protocol) -> list[dict[str, Any]]:
    rows = []
    for r in records:
        for t in r["test"]:
            row: dict[str, Any] = {
                "protocol": protocol,
                "fold": r["subject"],
                "key": t["key"],
                "dataset": t["dataset"],
                "subject": t["subject"],
                "label": t["label"],
                "label_name": class_names[t["label"]],
                "onset": t["keyframes"][0],
                "apex": t["keyframes"][1],
                "offset": t["keyframes"][2],
            }
            for m in modes:
                row[f"pred_{m}"] = t["pred"][m]
            for m in modes:
                for c, p in enumerate(t["probs"][m]):
                    row[f"p_{m}_{class_names[c]}"] = p
            rows.append(row)
    return rows


def _pct(x: float) -> str:
    return "-" if x is None or x != x else f"{100 * x:.2f}"


def coverage_note(results: dict[str, Any]) -> str:
    """``""`` when a run's results pool every fold of its plan; else one sentence saying how
    many they pool (``"casme2-3: pooled over 4 of 5 folds; not finished: sub03."``)."""
    planned, done = results.get("num_planned_folds"), results["num_folds"]
    if planned is None or done >= planned:
        return ""
    missing = results.get("missing_folds", [])
    listed = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
    return (
        f"{results['name']} ({results['setting']}): pooled over {done} of {planned} folds, not all of the "
        f"LOSO; not finished: {listed}."
    )


def paper_tables(results: Sequence[dict[str, Any]]) -> tuple[str, str]:
    """Markdown and LaTeX tables of one or more runs in the layout of the paper's Tables II-III.

    Rows: ``<name> (<mode label>)`` (:data:`MODE_LABELS`; :data:`MODE_NOTE` under the table
    says what they mean); columns: one group per
    dataset setting with ACC, UF1 and UAR in %. Runs with the same name share rows. All runs
    must share one protocol (the caption states it).
    """
    protocols = {r["protocol"] for r in results}
    if len(protocols) != 1:
        raise ValueError(f"cannot put runs of different protocols in one table: {sorted(protocols)}")
    described = protocol_description(protocols.pop())
    settings: list[str] = []
    for r in results:
        if r["setting"] not in settings:
            settings.append(r["setting"])
    rows: dict[str, dict[str, dict[str, Any]]] = {}
    for r in results:
        for m, metrics in r["modes"].items():
            rows.setdefault(f"{r['name']} ({MODE_LABELS[m]})", {})[r["setting"]] = metrics
    names = [SETTING_NAMES.get(s, s) for s in settings]

    md = [
        f"{described}.",
        "",
        "| Model | " + " | ".join(f"{n} ACC | {n} UF1 | {n} UAR" for n in names) + " |",
        "|---|" + "---:|" * (3 * len(settings)),
    ]
    for row, by in rows.items():
        cells = []
        for s in settings:
            m = by.get(s, {})
            cells += [_pct(m.get("acc")), _pct(m.get("uf1")), _pct(m.get("uar"))]
        md.append(f"| {row} | " + " | ".join(cells) + " |")
    md.append("")
    partial = [note for note in map(coverage_note, results) if note]
    if partial:
        md += [f"**{note}**" for note in partial] + [""]
    md.append(
        "ACC, UF1 (macro F1) and UAR (macro recall) in %, from predictions pooled over "
        + ("the finished LOSO folds (see above)." if partial else "all LOSO folds.")
    )
    md.append(f"Modes: {MODE_NOTE}")

    esc = lambda t: t.replace("&", r"\&").replace("%", r"\%").replace("_", r"\_")  # noqa: E731
    tex = [
        f"% {described}.",
        *(f"% {note}" for note in partial),
        r"\begin{table}[t]",
        r"\centering",
        r"\caption{"
        + esc(described)
        + r". ACC, UF1 and UAR (\%) pooled over LOSO folds. "
        + "".join(esc(note) + " " for note in partial)
        + esc(MODE_NOTE)
        + "}",
        r"\begin{tabular}{l" + "ccc" * len(settings) + "}",
        r"\hline",
        "Model & " + " & ".join(r"\multicolumn{3}{c}{" + esc(n) + "}" for n in names) + r" \\",
        " & " + " & ".join(["ACC. & UF1 & UAR"] * len(settings)) + r" \\",
        r"\hline",
    ]
    for row, by in rows.items():
        cells = []
        for s in settings:
            m = by.get(s, {})
            cells += [_pct(m.get("acc")), _pct(m.get("uf1")), _pct(m.get("uar"))]
        tex.append(esc(row) + " & " + " & ".join(cells) + r" \\")
    tex += [r"\hline", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(md) + "\n", "\n".join(tex)


def plot_confusion(cm: np.ndarray, class_names: Sequence[str], path: str | Path, title: str = "") -> Path:
    """Confusion matrix PNG (rows: true class, columns: predicted; counts in the cells)."""
    n = len(class_names)
    fig = Figure(figsize=(1.2 + 0.8 * n, 1.0 + 0.8 * n))  # no pyplot: no global backend or figure state
    ax = fig.subplots()
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(n), class_names, rotation=45, ha="right")
    ax.set_yticks(range(n), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    top = cm.max() if cm.size else 0
    for i in range(n):
        for j in range(n):
            ax.text(
                j,
                i,
                str(int(cm[i, j])),
                ha="center",
                va="center",
                color="white" if top and cm[i, j] > top / 2 else "black",
            )
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    return Path(path)


def _write_tsne(out: Path, records, plan, cfg: TrainConfig) -> set[str]:
    """Write ``tsne_<phase>.png/.csv`` of every phase with features for all held-out samples;
    returns the phases written."""
    feats: dict[str, list[np.ndarray]] = {}
    keys, labels = [], []
    for r in records:
        path = fold_paths(out, r["subject"])["features"]
        if not path.is_file():
            return set()
        with np.load(path) as data:
            for phase in data.files:
                feats.setdefault(phase, []).append(data[phase])
        keys += [t["key"] for t in r["test"]]
        labels += [t["label"] for t in r["test"]]
    written = set()
    for phase, parts in feats.items():
        x = np.concatenate(parts)
        if len(x) != len(keys):
            continue
        written.add(phase)
        tsne_plot(
            x,
            np.array(labels),
            plan.class_names,
            *tsne_files(out, phase),
            keys=keys,
            protocol=cfg.evaluation.protocol,
            threads=cfg.run.num_threads or 2,
            title=f"{cfg.name}: {cfg.data.protocol}, held-out {phase} features\n{_short(cfg.evaluation.protocol)}",
        )
    return written
