"""Copying snapshots into another repository: only the chunks it lacks, with its own ids.

:mod:`.copier` copies snapshots (the trees written again with the target's
chunk ids, data re-encrypted with its key); :mod:`.idmap` pairs a source's
ids with a target's from an earlier copy, so that unchanged chunks are not
read again.
"""
