"""Restoring: a snapshot, or some of its paths, written back below a directory.

What a restore is asked to do and how its processes share it
(:mod:`.options`); the processes (:mod:`.processes`), each a restorer
(:mod:`.restorer`) whose workers read runs of packs and write their blobs
(:mod:`.packruns`, around the page cache: :mod:`.directwrite`); the target
directory, never written outside (:mod:`.target`); the metadata and special
files of restored nodes (:mod:`.nodemeta`); and the byte ranges a damaged
repository lost (:mod:`.damage`).
"""
