"""The protection service: the daemon that carries out approved policies by itself.

Importing the package imports nothing else: the command line loads the
modules a command needs when it runs (docs/service.md).
"""
