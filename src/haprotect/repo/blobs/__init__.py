"""Blobs: file data cut into chunks, sealed and packed into the store, and read back.

Cutting (:mod:`.chunker`), hashing, deduplicating, compressing and
encrypting chunks into packs (:mod:`.blobsink`, :mod:`.packwriter`), storing
the packs and then the index blobs naming them (:mod:`.uploader`), and
reading blobs back through the index (:mod:`.blobreader`). Backup, restore
and the maintenance commands share these; the layout of what they write is
:mod:`haprotect.repo.format`.
"""
