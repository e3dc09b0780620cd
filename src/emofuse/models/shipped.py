"""The default models shipped inside the package, and their model cards.

Each lives in ``emofuse/assets/models/<name>/``: ``model.safetensors`` + ``model.json`` (a registry
checkpoint, loaded with :func:`emofuse.models.load_model`), ``card.json`` (data, protocol, licence
and the numbers measured by ``scripts/train_default_models.py``) and ``MODEL_CARD.md`` rendered
from it. Nothing is downloaded: a missing model is reported as such.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SHIPPED = ("voice", "face", "text")


def assets_dir() -> Path:
    return Path(__file__).resolve().parents[1] / "assets" / "models"


def shipped_model_dir(name: str) -> Path | None:
    """The folder of shipped model ``name`` (``voice``, ``face``, ``text``), or None when not installed."""
    folder = assets_dir() / name
    return folder if (folder / "model.json").is_file() else None


def read_card(folder: Path | None) -> tuple[dict[str, Any], str]:
    if folder is None:
        return {}, ""
    card_path, md_path = folder / "card.json", folder / "MODEL_CARD.md"
    card = json.loads(card_path.read_text(encoding="utf-8")) if card_path.is_file() else {}
    markdown = md_path.read_text(encoding="utf-8") if md_path.is_file() else ""
    return card, markdown


def _pct(x: Any) -> str:
    return f"{100 * float(x):.1f} %" if isinstance(x, int | float) else "n/a"


def render_model_card(card: dict[str, Any]) -> str:
    """``MODEL_CARD.md`` from ``card.json``: every number in it comes from the card, none typed by hand."""
    m = card.get("measured", {})
    lines = [
        f"# emofuse default {card['name']} model (`{card['registry_model']}`, version {card.get('version', '1')})",
        "",
        f"Labels (probability columns, in order): {', '.join(card['labels'])}.",
        "",
        "## Data",
        "",
        card["data"]["dataset"],
        "",
        "## Licence of the training data",
        "",
        card["data"]["licence"],
        "",
        *([f"Pretrained weights: {card['pretrained']['weights']} (licence: {card['pretrained']['licence']}).", ""]
          if card.get("pretrained") else []),
        "## Protocol",
        "",
        card["protocol"],
        "",
        "## Measured",
        "",
        f"On {m.get('split', 'held-out data')}:",
        "",
        "| metric | value |",
        "|---|---|",
        f"| accuracy (WA) | {_pct(m.get('wa'))} |",
        f"| unweighted average recall (UA) | {_pct(m.get('ua'))} |",
        f"| macro-F1 | {_pct(m.get('macro_f1'))} |",
        f"| weighted-F1 | {_pct(m.get('weighted_f1'))} |",
        f"| test samples | {m.get('n', 'n/a')} |",
        *([f"| best epoch (validation) | {m['best_epoch']} |"] if m.get("best_epoch") is not None else []),
        f"| training samples | {m.get('n_train', 'n/a')} |",
        f"| training time | {m.get('train_seconds', 0):.0f} s on {m.get('device', 'n/a')} |",
        "",
    ]
    per_class = m.get("per_class") or {}
    if per_class:
        lines += ["Per class (recall / F1):", "", "| class | recall | F1 | support |", "|---|---|---|---|"]
        for label, s in per_class.items():
            lines.append(f"| {label} | {_pct(s['recall'])} | {_pct(s['f1'])} | {s['support']} |")
        lines.append("")
    tta = card.get("measured_tta")
    if tta:
        lines += ["Test-time augmentation (not used by `predict` or the live page, which run one pass): "
                  + ", ".join(f"{how} {_pct(value)} accuracy" for how, value in tta.items()) + ".", ""]
    cal = card.get("calibration")
    if cal:
        lines += ["## Calibration", "",
                  f"Probabilities are temperature-scaled (T = {cal['temperature']:g}, fitted on {cal['fitted_on']}). "
                  f"An answer whose calibrated confidence is below {cal['uncertain_below']:.2f} is shown as "
                  "uncertain: on that held-out data, answers this unconfident were wrong more often than right.", ""]
        if cal.get("ece_before") is not None:
            lines += [f"Expected calibration error on {cal['tested_on']}: {cal['ece_before']:.3f} before, "
                      f"{cal['ece_after']:.3f} after.", ""]
        if card.get("calibration_command"):
            lines += ["```bash", card["calibration_command"], "```", ""]
    spk = card.get("speaker_adaptation")
    if spk:
        lines += ["## Speaker adaptation", "",
                  "`emofuse predict --adapt-speaker` and the live stream adapt the voice model to one speaker: each "
                  "clip joins that speaker's running feature statistics (shrunk towards the training population, "
                  f"{spk['shrinkage']:g} pseudo-clips), and from the {spk['min_clips']}th clip on a second head, "
                  "trained on per-speaker standardised features, answers.", "",
                  f"On {spk['split']}: UA {_pct(spk.get('ua'))} over all {spk['n']} clips (the first "
                  f"{spk['min_clips'] - 1} of each speaker answered by the plain head), UA {_pct(spk.get('ua_adapted'))} "
                  f"over the {spk['n_adapted']} clips answered adapted.", ""]
    final = card.get("final_training")
    if final:
        how_long = f" for {final['epochs']} epochs" if "epochs" in final else ""
        lines += [f"The shipped weights were then trained on {final['clips']} clips{how_long} "
                  f"({final['seconds']:.0f} s).", ""]
    lines += [
        "## Reproduce",
        "",
        "```bash",
        card["command"],
        "```",
        "",
        "Recipe (model parameters passed to `create_model`):",
        "",
        "```json",
        json.dumps(card.get("recipe", {}), indent=2),
        "```",
        "",
        "## Limits",
        "",
        "Acted or posed emotion from one dataset; expect lower accuracy on spontaneous speech and faces, other "
        "languages, recording conditions and demographics the data does not cover. Not for decisions about people.",
        "",
    ]
    return "\n".join(lines)
