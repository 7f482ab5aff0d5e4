"""What each column of a comparison means, in one place: the CLI's tables, the notebook's HTML
and the report all explain their columns with these lines."""

COMPARISON_COLUMNS: tuple[tuple[str, str], ...] = (
    ("SD cos", "cosine of the paper's Standard-Deviation Vectors (1: same per-type spread)"),
    ("CV cos", "cosine of the paper's Clustering Vectors"),
    ("spectral d", "relative distance of same-shaped matrices' top singular values (0: identical)"),
    ("circuit d", "median distance of matched heads' QK/OV circuit spectra, free of every rewrite's scale"),
    ("token r", "median correlation over matched layers of what each layer does to shared anchor words"),
    ("token z", "token r above independently trained models, in standard deviations"),
    ("family", "same tokenizer and architecture (a question apart from lineage)"),
    ("lineage", "the verdict: same-model, same-family/derived, unrelated (independent), undetermined"),
    ("parent", "for a derived pair, A or B where the weights say which is the parent"),
)

LEGEND = dict(COMPARISON_COLUMNS)

SEARCH_COLUMNS: tuple[tuple[str, str], ...] = (
    ("rank", "best first: by verdict, then token r (or circuit, spectral closeness)"),
    ("lineage", "the verdict of the exact comparison with the query"),
    *((h, LEGEND[h]) for h in ("token r", "token z", "circuit d", "family")),
)

# One letter per verdict, for matrices of many models (tables and heatmaps).
VERDICT_CODES: dict[str, str] = {
    "same-model": "=",
    "same-family/derived": "D",
    "adapter-of": "A",
    "adapter-fits": "a",
    "undetermined": "?",
    "adapter-for-other-shapes": "-",
    "unrelated": "x",
}
MATRIX_LEGEND = (
    "each cell: the verdict's letter (= same model, D derived, A adapter of, a adapter fits, "
    "? undetermined, - adapter for other shapes, x unrelated: independently trained) and the lineage "
    "statistic: r, the token correlation (independent models 0.13 +- 0.08, derived 0.74-1.00), or "
    "where the models have no token probes d, the circuit distance (0 for a copy); group: the models "
    "the verdicts join into one lineage"
)
