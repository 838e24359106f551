"""Test support shipped with the package: fakes, builders, conformance suites."""
