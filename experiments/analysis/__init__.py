"""Runs side by side: comparison tables, groups with intervals and verdicts, and plots, all read from MLflow.

- `compare`: one row per run, best first; which params differ.
- `grouping`: runs grouped by params (count, mean, std, 95% interval), the groups compared
  pair by pair with a verdict, and the same as pandas DataFrames (`compare_groups`).
- `stats`: the statistics on plain numbers (intervals, Welch, Holm, power), on scipy.stats.
- `budgets`: what runs spent, whether two groups spent alike, a metric at one epoch.
- `plots`: epoch curves, group means with their 95% interval, runs as dots, gradient norms.
- `tables`: rows printed as a terminal table, CSV, JSON or Markdown.

The package itself imports nothing: `tables` is plain Python that the ``zoo``
command's parsers use at start-up; the others import MLflow and matplotlib.
"""
