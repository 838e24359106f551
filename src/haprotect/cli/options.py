"""Arguments and options that several verbs share, spelled once."""

from __future__ import annotations

from typing import Annotated

import typer

SOURCE_HELP = (
    "Cluster to query: pacemaker:// (the running cluster, or CIB_file=cib.xml), "
    "pacemaker+file:///path/cib.xml, vcs:// (the running Veritas cluster), "
    "vcs+file:///path/main.cf, kubernetes://[CONTEXT] (the API through a kubeconfig), "
    "kubernetes+file:///path/dump.json (kubectl get -o json), or file:///path/topology.yaml."
)

SourceArg = Annotated[str, typer.Argument(help=SOURCE_HELP)]

NoCliOpt = Annotated[
    bool,
    typer.Option(
        "--no-cli",
        help="Do not run the cluster manager's tools; read roles from the saved status.",
    ),
]
