"""When to alert about RPOs: as a breach begins, not at each look at the status.

The service looks at the status often (each scheduler tick, each scrape);
:func:`rpo_alerts` compares the data sets breached now with those breached
at the last look and makes a notification for each new breach only. A data
set that recovers and is breached again is notified again.
"""

from __future__ import annotations

from haprotect.service.notify.messages import rpo_breached
from haprotect.service.notify.notification import Notification
from haprotect.service.status import Overview

#: A data set: (cluster, application, dataset).
DataSetKey = tuple[str, str, str]


def rpo_alerts(
    previous: frozenset[DataSetKey], overview: Overview
) -> tuple[tuple[Notification, ...], frozenset[DataSetKey]]:
    """Notifications of the breaches new since ``previous``, and the breached keys to keep."""
    breached = {(d.cluster, d.application, d.dataset): d for d in overview.breached}
    new = tuple(rpo_breached(d, overview.at) for key, d in breached.items() if key not in previous)
    return new, frozenset(breached)
