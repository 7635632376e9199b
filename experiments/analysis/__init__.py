"""Runs side by side: comparison tables, groups (mean, std, count) and plots, all read from MLflow.

- `compare`: one row per run, best first; which params differ.
- `grouping`: runs grouped by params, with mean, standard deviation and count.
- `plots`: epoch curves, group means with a band, per-stage gradient norms.
- `tables`: rows printed as a terminal table, CSV, JSON or Markdown.

The package itself imports nothing: `tables` is plain Python that the ``zoo``
command's parsers use at start-up; the others import MLflow and matplotlib.
"""
