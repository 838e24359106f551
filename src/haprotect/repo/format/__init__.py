"""The stored format: what each blob of a repository holds, and how it is read and written.

The config (:mod:`.config`), the key files (:mod:`.keyfile`: the document and
the key derivation; :mod:`.keysealing`: the master key sealed in it), ids and
encryption (:mod:`.crypto`), which keys are blobs (:mod:`.names`), packs
(:mod:`.pack`, and :mod:`.packindex` reading their own tables), the index
(:mod:`.index`, loaded blob by blob by :mod:`.indexset`), snapshots
(:mod:`.snapshots`) and their trees (:mod:`.tree`). The layout is in
docs/design/repository-format.md.

Nothing is imported here: opening a repository loads only what it needs
before the key is derived (see :mod:`haprotect.repo.opening`).
"""
