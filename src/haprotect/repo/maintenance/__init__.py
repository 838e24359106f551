"""Keeping a repository: check, forget, prune, repair, statistics.

Which chunks the snapshots reach (:mod:`.reachable`) is what check
(:mod:`.check`, one pack at a time: :mod:`.packcheck`; paths judged as a
restore would: :mod:`.pathjudge`) and prune (:mod:`.prune`, run as
:mod:`.pruneoptions` says) start from. Retention (:mod:`.retention`) says
which snapshots a forget keeps; the repairs rebuild the index
(:mod:`.repairindex`, moving damaged packs' good blobs: :mod:`.salvage`) and
rewrite snapshots without what is lost (:mod:`.repairsnapshots`);
:mod:`.stats` counts what is stored.
"""
