"""haprotect: HA-aware data protection.

Discover what a high-availability cluster makes highly available, generate an
explained backup policy for it, and keep that policy in step with the cluster.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
