"""The command line: one module per verb, each thin over the layer below.

A verb module imports at its top only what typer needs to build its help
(options, defaults, cheap types); what the command runs with (the engine,
policies, the repository) is imported in the command's body, so that
``--help`` and a mistyped option answer at once.
``tests/unit/test_cli_startup.py`` holds every command to it.
"""
