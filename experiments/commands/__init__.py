"""Subcommands of the `zoo` command, one module each (``add_parser`` and ``run``)."""
