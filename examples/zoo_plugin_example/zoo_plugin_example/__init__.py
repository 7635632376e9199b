"""An example package that adds models to the zoo through the ``zoo.models`` entry point.

Nothing here imports the package at start-up: the registry imports
`zoo_plugin_example.models` the first time a model is looked up.
"""
