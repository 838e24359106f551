"""The web console of ``haprotect serve``: server-rendered pages under ``/console``.

Pages (Jinja2 templates, escaped everywhere, no script): the dashboard
(each application's data sets and their protection), policies and the
review of a pending version (approve or reject: admins), runs and a run's
detail. The console uses the API's catalog, control and roles.

Terms:

session
    A signed cookie (:mod:`~haprotect.api.console.session`) naming the API
    token a browser logged in with; every page checks that the token is
    still live and that its role allows the page.
CSRF token
    A random value of the session, sent in a hidden field of every form;
    a POST without it is refused (:mod:`~haprotect.api.console.guard`).

Modules: ``app`` (the application and its error pages), ``session``,
``guard`` (login, roles, CSRF), ``render`` (templates), ``dashboard``,
``review`` and ``runview`` (what the pages show), ``routes_session``
(login, logout), ``routes_pages``.
"""

from __future__ import annotations

from haprotect.api.console.app import build_console

#: Where the API's application mounts the console.
MOUNT = "/console"

__all__ = ["MOUNT", "build_console"]
