"""The Veritas Cluster Server (VCS) source: main.cf and the cluster's state, as a topology.

Terms (VCS's own):

system
    A cluster node.
service group
    A set of resources VCS brings online together: on one system at a time
    (a *failover* group) or on every system of its ``SystemList`` at once
    (``Parallel = 1``). A *global* group (``ClusterList``) can also fail over
    to another cluster.
resource, type
    ``Mount infa_mount ( ... )``: a resource of type ``Mount``, managed by the
    agent of that type; its attributes are the agent's arguments.
link, group dependency
    ``A requires B``: resource A needs resource B of the same group.
    ``requires group X online local firm``: this group needs group X.
"""
