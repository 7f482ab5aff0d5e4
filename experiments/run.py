"""Fingerprints every model that derivatives.py made, and measures the paper's claims and how well
`compare` tells lineage. Writes experiments/results/: fingerprints/*.json, labels.json,
pairs.json, summary.json, REPORT.md and plots.

Usage: python experiments/derivatives.py && python experiments/run.py
"""

from __future__ import annotations

import itertools
import json
import math
import sys
from dataclasses import replace
from pathlib import Path

import weightprint_fast as wf
from weightprint_fast.apps.report import plot, table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from derivatives import CACHE

RESULTS = Path(__file__).resolve().parent / "results"
SIGNALS = (
    "sd_cosine",
    "cv_cosine",
    "layer_pearson",
    "coclustering_agreement",
    "spectral_distance",
    "circuit_distance",
    "circuit_specificity",
    "mlp_distance",
)
LOWER_IS_CLOSER = ("spectral_distance", "circuit_distance", "circuit_specificity", "mlp_distance")


def is_adapter(name: str) -> bool:
    return "-lora-" in name and not name.endswith("-merged") and "-rw-" not in name


def lineage(name: str) -> str:
    """The family a model descends from; fresh initialisations are their own."""
    if "-fresh" in name:
        return name
    for family in ("smollm2", "gemma3", "minilm"):
        if name.startswith(family):
            return family
    raise ValueError(name)


def schema1_verdict(a: wf.Fingerprint, b: wf.Fingerprint, c: wf.Comparison) -> str:
    """What compare answered before the invariants (release 0.1.0), kept here as the baseline:
    the matrices' own spectra compared whatever their shapes; identical (<= 1e-6) is the same
    model, close (<= 0.05, layer profiles r >= 0.9) derived, far (> 0.15) unrelated; without
    spectra, SD cosine < 0.99 meant unrelated."""
    from weightprint_fast.compare.signals import spectral_distance

    types = [t for t in a.types if t in b.types]
    ia, ib = [a.types.index(t) for t in types], [b.types.index(t) for t in types]
    d = spectral_distance(replace(a, matrix_shapes={}), b, ia, ib)
    if d is None:
        return "unrelated" if c.sd_cosine < 0.99 else "undetermined"
    if d <= 1e-6:
        return "same-model" if c.sd_cosine >= 1 - 1e-9 and a.layers == b.layers else "same-family/derived"
    if d <= 0.05:
        return "same-family/derived" if c.layer_pearson >= 0.9 else "undetermined"
    return "unrelated" if d > 0.15 else "undetermined"


def fingerprints(models: dict[str, str]) -> dict[str, wf.Fingerprint]:
    out = RESULTS / "fingerprints"
    out.mkdir(parents=True, exist_ok=True)
    fps = {}
    for name, path in models.items():
        target = out / f"{name}.json"
        if target.exists():
            fps[name] = wf.Fingerprint.load(target)
            continue
        fp = wf.fingerprint(path, progress=False)
        fp.meta["name"] = name
        fp.meta["source"] = name  # no local paths in committed results
        fp.save(target)
        fps[name] = fp
    return fps


def auc(scores: list[float], labels: list[bool]) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores))


def evaluate(fps: dict[str, wf.Fingerprint]) -> tuple[list[dict], dict]:
    names = sorted(n for n in fps if not is_adapter(n))
    pairs = []
    for a, b in itertools.combinations(names, 2):
        c = wf.compare(fps[a], fps[b])
        pairs.append(
            {
                "a": a,
                "b": b,
                "related": lineage(a) == lineage(b),
                **c.to_dict(),
                "schema1_verdict": schema1_verdict(fps[a], fps[b], c),
            }
        )
    labels = [p["related"] for p in pairs]
    summary = {"pairs": len(pairs), "related_pairs": sum(labels), "auc": {}}
    for s in SIGNALS:
        # A missing signal (different shapes, no invariants) counts as the least related score.
        score = [
            -1e9
            if p[s] is None or (isinstance(p[s], float) and math.isnan(p[s]))
            else (-p[s] if s in LOWER_IS_CLOSER else p[s])
            for p in pairs
        ]
        summary["auc"][s] = auc(score, labels)
    related = [p for p in pairs if p["related"]]
    unrelated = [p for p in pairs if not p["related"]]
    said_related = lambda p: p["verdict"] in ("same-model", "same-family/derived")  # noqa: E731
    summary["verdict"] = {
        "true_positive_rate": sum(map(said_related, related)) / len(related),
        "false_positive_rate": sum(map(said_related, unrelated)) / len(unrelated),
        "undetermined_related": sum(p["verdict"] == "undetermined" for p in related),
        "undetermined_unrelated": sum(p["verdict"] == "undetermined" for p in unrelated),
        "unrelated_called_unrelated": sum(p["verdict"] == "unrelated" for p in unrelated) / len(unrelated),
        "schema1_rule_true_positive_rate": sum(
            p["schema1_verdict"] in ("same-model", "same-family/derived") for p in related
        )
        / len(related),
        "schema1_rule_false_positive_rate": sum(
            p["schema1_verdict"] in ("same-model", "same-family/derived") for p in unrelated
        )
        / len(unrelated),
    }
    return pairs, summary


def report(fps: dict[str, wf.Fingerprint], pairs: list[dict], summary: dict) -> str:
    lines = ["# Results", ""]
    bases = ["smollm2-f32", "gemma3-f32", "minilm", "smollm2-fresh", "minilm-fresh"]
    cm = wf.compare_many([fps[n] for n in bases])
    lines += ["## Families separate (SD-vector cosine / CV cosine between base models)", ""]
    rows = [
        [n]
        + [
            f"{cm.signals['sd_cosine'][i, j]:.4f} / {cm.signals['cv_cosine'][i, j]:.3f}"
            for j in range(len(bases))
        ]
        for i, n in enumerate(bases)
    ]
    lines += [table(["model", *bases], rows), ""]
    lines += ["## Co-clustering of q with k, and of v with o (fraction of layers in one cluster)", ""]
    rows = []
    for n in ["smollm2-f32", "smollm2-q4_1.gguf", "gemma3-f32", "gemma3-q4_k_m.gguf", "minilm"]:
        fp = fps[n]
        t = fp.types.index
        rows.append(
            [
                n,
                fp.coclustering[t("q"), t("k")],
                fp.coclustering[t("v"), t("o")],
                fp.coclustering[t("q"), t("v")],
                fp.coclustering[t("k"), t("o")],
            ]
        )
    lines += [table(["model", "q-k", "v-o", "q-v", "k-o"], rows), ""]
    lines += ["## LoRA adapters: SD vectors by corpus and by base", ""]
    adapters = sorted(n for n in fps if is_adapter(n))
    rows = []
    for a, b in itertools.combinations(adapters, 2):
        same_base = a.split("-lora-")[0] == b.split("-lora-")[0]
        same_corpus = a.split("-lora-")[1].split("-r")[0] == b.split("-lora-")[1].split("-r")[0]
        c = wf.compare(fps[a], fps[b])
        rows.append(
            [a, b, "yes" if same_base else "no", "yes" if same_corpus else "no", c.sd_cosine, c.sd_distance]
        )
    lines += [table(["adapter A", "adapter B", "same base", "same corpus", "SD cos", "SD dist"], rows), ""]
    lines += ["## LoRA: Clustering Vector of adapter and merged model against the base", ""]
    rows = []
    for a in adapters:
        base = "smollm2-f32" if a.startswith("smollm2") else "minilm"
        ca, cmg = wf.compare(fps[base], fps[a]), wf.compare(fps[base], fps[a + "-merged"])
        rows.append(
            [
                a,
                ca.cv_cosine,
                ca.cv_distance,
                cmg.cv_cosine,
                cmg.cv_distance,
                cmg.spectral_distance,
                cmg.verdict,
            ]
        )
    lines += [
        table(
            [
                "adapter",
                "CV cos adapter",
                "CV dist adapter",
                "CV cos merged",
                "CV dist merged",
                "spectral d merged",
                "verdict merged",
            ],
            rows,
        ),
        "",
    ]
    lines += ["## Robustness: each derivative against its base", ""]
    rows = []
    for n in sorted(fps):
        if is_adapter(n) or n in ("smollm2-f32", "gemma3-f32", "minilm") or "-fresh" in n:
            continue
        base = {"smollm2": "smollm2-f32", "gemma3": "gemma3-f32", "minilm": "minilm"}[lineage(n)]
        if "-lora-" in n and "-rw-" in n:
            base = n.split("-rw-")[0]
        c = wf.compare(fps[base], fps[n])
        rows.append(
            [
                n,
                base,
                c.sd_distance,
                c.cv_distance,
                c.spectral_distance,
                c.circuit_distance,
                c.circuit_specificity,
                c.mlp_distance,
                schema1_verdict(fps[base], fps[n], c),
                c.verdict,
            ]
        )
    lines += [
        table(
            [
                "derivative",
                "against",
                "SD dist",
                "CV dist",
                "spectral d",
                "circuit d",
                "specificity",
                "MLP d",
                "verdict 0.1.0",
                "verdict",
            ],
            rows,
        ),
        "",
    ]
    v = summary["verdict"]
    lines += [
        "## Lineage detection over all pairs of models",
        "",
        f"{summary['pairs']} pairs ({summary['related_pairs']} related). ROC AUC per signal:",
        "",
        table(["signal", "ROC AUC"], [[s, a] for s, a in summary["auc"].items()]),
        "",
        f"Verdict: true-positive rate {v['true_positive_rate']:.3f}, false-positive rate "
        f"{v['false_positive_rate']:.3f}; undetermined: {v['undetermined_related']} related and "
        f"{v['undetermined_unrelated']} unrelated pairs. The 0.1.0 rule (spectra only) on the same "
        f"pairs: true-positive rate {v['schema1_rule_true_positive_rate']:.3f}, false-positive rate "
        f"{v['schema1_rule_false_positive_rate']:.3f}.",
        "",
    ]
    missed = [p for p in pairs if p["related"] and p["verdict"] not in ("same-model", "same-family/derived")]
    if missed:
        lines += [
            "Related pairs the verdict did not call related:",
            "",
            table(
                ["A", "B", "verdict", "reason"], [[p["a"], p["b"], p["verdict"], p["reason"]] for p in missed]
            ),
            "",
        ]
    return "\n".join(lines)


def main() -> None:
    models = json.loads((CACHE / "models.json").read_text())
    fps = fingerprints(models)
    pairs, summary = evaluate(fps)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "labels.json").write_text(
        json.dumps({n: lineage(n) for n in fps if not is_adapter(n)}, indent=1)
    )
    (RESULTS / "pairs.json").write_text(json.dumps(pairs, indent=1))
    (RESULTS / "summary.json").write_text(json.dumps(summary, indent=1))
    text = report(fps, pairs, summary)
    (RESULTS / "REPORT.md").write_text(text + "\n")
    plot([fps[n] for n in ("smollm2-f32", "gemma3-f32", "minilm")], RESULTS / "families.png")
    plot(
        [fps[n] for n in sorted(fps) if n.startswith("smollm2") and not is_adapter(n)],
        RESULTS / "smollm2-derivatives.png",
    )
    print(text)


if __name__ == "__main__":
    main()
