"""Safe XML parsing for cluster configurations.

Entities are not resolved and the network is never touched, so a hostile CIB
cannot read local files or expand into a billion laughs.
"""

from __future__ import annotations

from lxml import etree

from haprotect.errors import ClusterConfigError, located


def parse_xml(data: bytes, origin: str) -> etree._Element:
    """Parse ``data`` or raise a one-line error naming ``origin`` and the line."""
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, huge_tree=True, remove_comments=True
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        line = exc.lineno if exc.lineno else None
        msg = exc.msg.splitlines()[0] if exc.msg else "malformed XML"
        raise ClusterConfigError(located(origin, line, f"malformed XML: {msg}")) from None
    if root is None:
        raise ClusterConfigError(located(origin, None, "empty document"))
    return root


def line_of(element: etree._Element) -> int | None:
    """The source line of ``element``, when the parser recorded one."""
    line = element.sourceline
    return line if isinstance(line, int) else None
