"""Backing up: walk the paths, reuse the parent's unchanged files, store what changed.

One run (:mod:`.run`) walks (:mod:`.walker`) ahead of the rest, merges the
walk with the parent snapshot's tree (:mod:`.files_cache`), and has the
archiver (:mod:`.archiver`) hand the files to its workers (:mod:`.dispatch`),
which read them (:mod:`.filereader`, :mod:`.fileworker`) and store their
chunks; how it runs is :mod:`.options`.
"""
