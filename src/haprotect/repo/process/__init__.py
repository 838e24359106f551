"""Processes and threads the repository's commands run on.

Forking a helper process (:mod:`.forking`), a pool of forked processes each
with a shared buffer (:mod:`.forkpool`), items made ahead by a thread of
their own (:mod:`.lookahead`), and a shorter thread switch interval while a
pipeline runs (:mod:`.switchinterval`). Nothing here knows the repository.
"""
