"""Giving a restored node its metadata: owner, mode, xattrs, times; special files.

Owners are set when asked (a restore running as root), by name when the
name exists here, else by number.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
from functools import lru_cache

from haprotect.model.snapshot import Node, NodeType


@lru_cache(maxsize=1024)
def uid_of(user: str | None, uid: int) -> int:
    try:
        return pwd.getpwnam(user).pw_uid if user else uid
    except KeyError:
        return uid


@lru_cache(maxsize=1024)
def gid_of(group: str | None, gid: int) -> int:
    try:
        return grp.getgrnam(group).gr_gid if group else gid
    except KeyError:
        return gid


def apply_metadata(fd: int, node: Node, *, owners: bool, xattrs: bool) -> None:
    """Owner, mode, xattrs (those this file system takes) and times of an open node."""
    if owners:
        os.fchown(fd, uid_of(node.user, node.uid), gid_of(node.group, node.gid))
    os.fchmod(fd, node.mode)
    if xattrs:
        for name, value in node.xattrs:
            try:
                os.setxattr(fd, name, value)
            except OSError:
                continue
    os.utime(fd, ns=(node.mtime_ns, node.mtime_ns))


def make_special(parent: int, name: bytes, node: Node, *, owners: bool) -> None:
    """Make a symlink, FIFO or device node ``name`` in directory ``parent``, with its metadata."""
    if node.type is NodeType.SYMLINK:
        os.symlink(os.fsencode(node.target or ""), name, dir_fd=parent)
    elif node.type is NodeType.FIFO:
        os.mkfifo(name, 0o600, dir_fd=parent)
    else:
        kind = stat.S_IFCHR if node.type is NodeType.CHAR else stat.S_IFBLK
        os.mknod(name, 0o600 | kind, node.rdev, dir_fd=parent)
    if owners:
        uid, gid = uid_of(node.user, node.uid), gid_of(node.group, node.gid)
        os.chown(name, uid, gid, dir_fd=parent, follow_symlinks=False)
    if node.type is not NodeType.SYMLINK:
        os.chmod(name, node.mode, dir_fd=parent)
    ns = (node.mtime_ns, node.mtime_ns)
    os.utime(name, ns=ns, dir_fd=parent, follow_symlinks=False)
