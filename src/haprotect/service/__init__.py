"""The protection service: the policy enforced by itself (docs/service.md).

Importing the package imports nothing else: the command line loads the
modules a command needs when it runs.
"""
