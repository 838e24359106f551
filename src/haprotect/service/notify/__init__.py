"""Alerts: notifications of failed runs, breached RPOs and drift, sent to webhooks and by e-mail.

:mod:`.notification` is what is said, :mod:`.config` where it goes (the
``notifications`` section of the service's config), :mod:`.webhook` and
:mod:`.email` the two kinds of target, :mod:`.dispatch` the dispatcher that
sends each notification to every target in a background thread, so the
scheduler never waits for a slow receiver and never sees a failure.
"""
