"""Experiment files shipped with the package, runnable by name (`zoo run seed`)."""
