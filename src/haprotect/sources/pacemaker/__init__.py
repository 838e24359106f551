"""Pacemaker: read a CIB and the cluster's state into a topology (see source.py)."""
