"""The study report: ``report.md`` (figures as PNG files beside it) and a self-contained ``report.html``
(figures embedded), rendered from one list of blocks so the two never say different things.

Every number comes from :class:`ReportData`, which :func:`emofuse.study.results.collect_study`
measures from the run directories; nothing here computes a score except differences of two shown numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from emofuse._io import atomic_write
from emofuse.evaluation.document import Block, Figure, Heading, Para, Table, render_html, render_markdown

PROTOCOL_NOTES = {
    "ravdess-6fold": "speaker-independent, EmoBox's six actor folds",
    "ravdess-actor-split": "speaker-independent, test actors 21-24",
    "ravdess-random": "**speaker-leaky** random clip split: for comparison with published random-split numbers only",
    "fer2013-official": "FER2013 official split, test = PrivateTest",
}
METRIC_NAMES = {"wa": "WA", "ua": "UA", "f1": "macro-F1"}


@dataclass(frozen=True)
class ReportRow:
    """One entry on one protocol, over all its folds and seeds. Scores are fractions."""

    entry: str
    kind: str  # "model" or "fusion"
    model: str
    description: str
    protocol: str
    dataset: str
    leaky: bool
    seeds: list[int]
    n_folds: int
    n_test: int
    labels: list[str]
    wa_mean: float
    wa_std: float
    ua_mean: float
    ua_std: float
    f1_mean: float
    f1_std: float
    ci95: dict[str, list[float]]
    confusion: list[list[int]]
    per_class_f1: dict[str, float]
    train_seconds: float
    device: str
    commits: list[str]
    reused_from: list[str] = field(default_factory=list)
    members: list[str] = field(default_factory=list)
    references: list[dict[str, Any]] = field(default_factory=list)
    # Fitted fusions, per fold: {"fold", "seed", "weights": [one per member], "stacker": bool | None}.
    fitted: list[dict[str, Any]] = field(default_factory=list)
    # UA per test fold, keyed "seed<k>/<fold>", so that entries can be compared fold by fold.
    ua_per_fold: dict[str, float] = field(default_factory=dict)

    def score(self, metric: str) -> float:
        return float({"wa": self.wa_mean, "ua": self.ua_mean, "f1": self.f1_mean}[metric])


@dataclass(frozen=True)
class ReportData:
    name: str
    description: str
    notes: list[str]
    command: str
    commit: str
    created: str
    rows: list[ReportRow]
    disabled: list[dict[str, str]] = field(default_factory=list)
    paired: dict[str, Any] | None = None
    paired_config: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if self.paired is not None:
            out["paired"] = {k: v for k, v in self.paired.items() if k != "per_pairing"}
        return out


def _pct(x: float) -> str:
    return f"{x * 100:.1f}"


def _pm(mean: float, std: float, n: int = 2) -> str:
    """``mean ± std`` in percent; with one fold (or pairing) there is no spread to show."""
    return f"{_pct(mean)} ± {_pct(std)}" if n > 1 else _pct(mean)


def _protocols(rows: Sequence[ReportRow]) -> list[str]:
    seen: list[str] = []
    for row in rows:
        if row.protocol not in seen:
            seen.append(row.protocol)
    return seen


def _published(row: ReportRow) -> str:
    parts = []
    for ref in row.references:
        metric = ref["metric"]
        ours = row.score(metric) * 100
        parts.append(f"{METRIC_NAMES[metric]} {ref['value']:.2f} (ours {ours:.1f}, {ours - ref['value']:+.1f})")
    return "; ".join(parts) if parts else "—"


def _published_marks(rows: Sequence[ReportRow]) -> dict[str, dict[str, float]]:
    """Published WA / UA numbers by metric name and entry, for the comparison chart."""
    marks: dict[str, dict[str, float]] = {}
    for r in rows:
        for ref in r.references:
            name = METRIC_NAMES[ref["metric"]]
            if name in ("WA", "UA"):
                marks.setdefault(name, {})[r.entry] = float(ref["value"])
    return marks


def _commit(row: ReportRow) -> str:
    short = sorted({c[:7] + ("-dirty" if c.endswith("-dirty") else "") for c in row.commits})
    return ", ".join(short) + (" (reused run)" if row.reused_from else "")


def _blocks(data: ReportData) -> list[Block]:
    from emofuse.evaluation import plots

    blocks: list[Block] = [Heading(1, f"Study `{data.name}`")]
    if data.description:
        blocks.append(Para(data.description))
    blocks.append(Para(f"Produced by `{data.command or 'emofuse study'}` at commit `{data.commit}`, {data.created}. "
                        "Every number below is measured from the run directories of this study; scores are "
                        "percentages: mean ± std over test folds (and seeds), 95 % interval = percentile bootstrap "
                        "over the pooled test predictions (1000 resamples)."))
    for note in data.notes:
        blocks.append(Para(f"**Note.** {note}"))
    for protocol in _protocols(data.rows):
        rows = [r for r in data.rows if r.protocol == protocol]
        blocks.append(Heading(2, f"{protocol} ({rows[0].dataset})"))
        blocks.append(Para(PROTOCOL_NOTES.get(protocol, "")))
        table = Table(["entry", "model", "WA %", "UA %", "macro-F1 %", "UA 95 % CI", "published (source column)",
                        "folds", "seeds", "train s", "device", "commit"], [])
        for r in rows:
            ci = r.ci95.get("ua", [float("nan")] * 2)
            table.rows.append([f"**{r.entry}**" if r.kind == "fusion" else r.entry,
                               r.model + (f" of {' + '.join(r.members)}" if r.members else ""),
                               _pm(r.wa_mean, r.wa_std, r.n_folds), _pm(r.ua_mean, r.ua_std, r.n_folds),
                               _pm(r.f1_mean, r.f1_std, r.n_folds),
                               f"{_pct(ci[0])}–{_pct(ci[1])}", _published(r), str(r.n_folds // max(1, len(r.seeds))),
                               ",".join(map(str, r.seeds)), f"{r.train_seconds:.0f}", r.device, _commit(r)])
        blocks.append(table)
        sources = sorted({ref["source"] + (f" ({ref['note']})" if ref.get("note") else "")
                          for r in rows for ref in r.references})
        if sources:
            blocks.append(Para("Published numbers: " + "; ".join(sources) + ". The bracket gives ours in the same "
                                "metric and the difference (ours − published), in points."))
        blocks.append(Figure(f"compare-{protocol}", f"WA and UA per entry on {protocol} (bars: mean ± std over "
                              "folds; diamonds: published numbers, on the bar of the metric they report)",
                              plots.comparison_chart(
                                  [r.entry for r in rows],
                                  {"WA": ([r.wa_mean for r in rows], [r.wa_std for r in rows]),
                                   "UA": ([r.ua_mean for r in rows], [r.ua_std for r in rows])},
                                  title=f"{protocol}: model comparison", xlabel="%",
                                  published=_published_marks(rows))))
        blocks.append(Figure(f"per-class-{protocol}", f"Per-class F1 on {protocol} (pooled test predictions)",
                              plots.per_class_chart({r.entry: r.per_class_f1 for r in rows}, rows[0].labels,
                                                    title=f"{protocol}: per-class F1")))
        blocks.append(Figure(f"confusion-{protocol}", f"Confusion matrices on {protocol}, summed over folds and "
                              "seeds, row-normalised (% of each true class)",
                              plots.confusion_grid({r.entry: r.confusion for r in rows},
                                                   {r.entry: r.labels for r in rows},
                                                   title=f"{protocol}: confusion (rows true)")))
    blocks += _fusion_section(data.rows)
    blocks += _fitted_section(data.rows)
    blocks += _gap_section(data.rows)
    if data.paired is not None and data.paired_config is not None:
        blocks += _paired_section(data.paired, data.paired_config)
    if data.disabled:
        blocks.append(Heading(2, "Entries not run"))
        blocks.append(Para("These entries are in the config with `enabled: false` (their models are not in the "
                            "registry yet, or they wait on them); they have no numbers here."))
        blocks.append(Table(["entry", "model / strategy", "what it is"],
                             [[d["entry"], d["what"], d["description"]] for d in data.disabled]))
    blocks.append(Heading(2, "Reproduce"))
    blocks.append(Para(f"`{data.command or 'emofuse study CONFIG --out DIR'}` (resumable: finished cells are "
                        "skipped). Run directories, with each fold's model, predictions and metrics, are under "
                        "`cells/<protocol>/<entry>/seed<k>/` of the study folder."))
    return blocks


def _fusion_section(rows: Sequence[ReportRow]) -> list[Block]:
    fusions = [r for r in rows if r.kind == "fusion"]
    if not fusions:
        return []
    by_key = {(r.entry, r.protocol): r for r in rows}
    table = Table(["fusion", "protocol", "members (UA %)", "best member UA %", "fusion UA %", "Δ UA (points)",
                    "folds above / level / below", "fusion macro-F1 %", "best member macro-F1 %"], [])
    for r in fusions:
        members = [by_key[(m, r.protocol)] for m in r.members if (m, r.protocol) in by_key]
        if not members:
            continue
        best = max(members, key=lambda m: m.ua_mean)
        best_f1 = max(m.f1_mean for m in members)
        table.rows.append([r.entry, r.protocol, ", ".join(f"{m.entry} {_pct(m.ua_mean)}" for m in members),
                           f"{_pct(best.ua_mean)} ({best.entry})", _pm(r.ua_mean, r.ua_std, r.n_folds),
                           f"{(r.ua_mean - best.ua_mean) * 100:+.1f}", _fold_tally(r, best), _pct(r.f1_mean),
                           _pct(best_f1)])
    return [Heading(2, "Fusion against its best member"),
            Para("Each fusion is fitted per fold on its members' **validation** predictions (temperatures, "
                  "weights, the stacker) and scored on the same test folds as its members; Δ is fusion UA minus "
                  "the best member's UA, both measured here. A negative Δ is reported as it is. The fold "
                  "count compares the two fold by fold (UA to 0.1 point): how often the fusion is above, level "
                  "with and below that member."),
            table]


def _fold_tally(fusion: ReportRow, member: ReportRow) -> str:
    """"above / level / below": the test folds where ``fusion``'s UA beats, equals (to 0.1 point) or
    trails ``member``'s; "—" when the rows share no fold (rows written before per-fold UA was kept)."""
    shared = sorted(set(fusion.ua_per_fold) & set(member.ua_per_fold))
    if not shared:
        return "—"
    gaps = [round((fusion.ua_per_fold[k] - member.ua_per_fold[k]) * 100, 1) for k in shared]
    return f"{sum(g > 0 for g in gaps)} / {sum(g == 0 for g in gaps)} / {sum(g < 0 for g in gaps)}"


def _fitted_section(rows: Sequence[ReportRow]) -> list[Block]:
    """Per fold, the weights a fitted fusion chose (and whether a stacker answered or its fallback)."""
    fitted = [r for r in rows if r.kind == "fusion" and r.fitted]
    if not fitted:
        return []
    table = Table(["fusion", "protocol", "members", "weights per fold (member order)", "stacker kept"], [])
    for r in fitted:
        def fold(f: dict[str, Any]) -> str:
            if f.get("stacker"):
                return f"{f['fold']}: stacker"
            return f"{f['fold']}: " + "/".join(f"{w:.1f}" for w in f["weights"])

        stacker = [f["stacker"] for f in r.fitted if f.get("stacker") is not None]
        table.rows.append([r.entry, r.protocol, " + ".join(r.members), "; ".join(fold(f) for f in r.fitted),
                           f"{sum(stacker)} of {len(stacker)} folds" if stacker else "—"])
    return [Heading(2, "What the fitted fusions chose"),
            Para("Weights fitted on each fold's validation predictions, one per member in the order listed "
                  "(a stacking fusion shows the weights of its fallback, the weighted average it answers with "
                  "when its stacker does not beat that average on held-out validation data)."),
            table]


def _gap_section(rows: Sequence[ReportRow]) -> list[Block]:
    leaky = {r.entry: r for r in rows if r.leaky}
    table = Table(["entry", "leaky protocol", "UA % leaky", "speaker-independent protocol", "UA % independent",
                    "gap (points)"], [])
    for r in rows:
        if r.leaky or r.entry not in leaky or r.dataset != leaky[r.entry].dataset or r.dataset == "fer2013":
            continue
        other = leaky[r.entry]
        table.rows.append([r.entry, other.protocol, _pm(other.ua_mean, other.ua_std, other.n_folds), r.protocol,
                           _pm(r.ua_mean, r.ua_std, r.n_folds), f"{(other.ua_mean - r.ua_mean) * 100:+.1f}"])
    if not table.rows:
        return []
    return [Heading(2, "Leaky vs speaker-independent"),
            Para("The same model and recipe on a random clip split (the same actors in train and test) and on "
                  "speaker-independent folds. The gap is how much a random split flatters a model: published "
                  "random-split numbers are not comparable with speaker-independent ones."), table]


def _paired_section(paired: dict[str, Any], cfg: dict[str, Any]) -> list[Block]:
    from emofuse.evaluation import plots

    methods = paired["methods"]
    table = Table(["method", "WA %", "UA %", "macro-F1 %"], [])
    n = int(cfg["pairings"])
    for name, s in methods.items():
        table.rows.append([name, _pm(s["wa_mean"], s["wa_std"], n), _pm(s["ua_mean"], s["ua_std"], n),
                           _pm(s["f1_mean"], s["f1_std"], n)])
    counts = paired["missing_modality_rows"]
    full = [m for m in methods if "(missing)" not in m]
    return [
        Heading(2, "Voice + face, paired by emotion (synthetic pairs)"),
        Para(f"No paired audio-visual data is available, so each RAVDESS test clip of `{cfg['voice']}` "
              f"({cfg['voice_protocol']}) is paired with a random FER2013 PrivateTest face of the same emotion "
              f"scored by `{cfg['face']}` ({cfg['face_protocol']}), in the shared 7-class space (calm counts as "
              f"neutral); validation clips pair with PublicTest faces, on which fusion is fitted. "
              f"{cfg['pairings']} random pairings; mean ± std over pairings of the fold-averaged scores; "
              f"{paired['n_test_per_pairing']} test pairs per pairing."),
        Para("**What this shows:** that fusion works end to end across label sets, how much each strategy gains "
              "when the two members' errors are independent given the emotion, and that it carries on when a "
              "modality is missing. **What it does not show:** real audio-visual fusion performance. In a real "
              "recording the voice and the face belong to the same person at the same moment and their errors "
              "are correlated, so real gains are smaller; these numbers are an upper bound on what late fusion "
              "of these two members could add, not an estimate of it."),
        table,
        Para(f"Rows marked *(missing)*: the same test pairs with the face dropped for {cfg['missing_face']:.0%} "
              f"and the voice for {cfg['missing_voice']:.0%} of samples (disjoint); fusion renormalises over what is "
              f"present (over all pairings: {counts['both']} samples fused from both, {counts['voice only']} from "
              f"voice only, {counts['face only']} from face only). A single member that is missing cannot answer; "
              "its rows are scored as a uniform guess."),
        Figure("paired", "Paired-by-emotion: UA (mean ± std over pairings)",
                plots.comparison_chart(full, {"UA": ([methods[m]["ua_mean"] for m in full],
                                                     [methods[m]["ua_std"] for m in full])},
                                       title="voice + face, paired by emotion", xlabel="UA %")),
    ]


# --- rendering ---------------------------------------------------------------------------------------


def write_report(data: ReportData, out: str | Path) -> tuple[Path, Path]:
    """Write ``report.md`` + ``figures/*.png`` and a self-contained ``report.html`` under ``out``."""
    out = Path(out)
    blocks = _blocks(data)
    for block in blocks:
        if isinstance(block, Figure):
            with atomic_write(out / "figures" / f"{block.name}.png", "wb") as handle:
                handle.write(block.png)
    md, page = out / "report.md", out / "report.html"
    with atomic_write(md) as handle:
        handle.write(render_markdown(blocks))
    with atomic_write(page) as handle:
        handle.write(render_html(blocks, title=f"emofuse study {data.name}"))
    return md, page
