"""Generate a large, valid CIB for the discovery benchmark.

10,000 primitives in 1,000 groups (by default) on eight nodes: each group is
a Filesystem on DRBD, a database, application resources and a virtual IP;
every tenth group's DRBD is a promotable clone. Groups are tied by order and
colocation constraints (some with resource sets), and a status section
records starts, promotions, monitors and probes, so that crm_mon has real
history to unpack. Seeded: the same arguments give the same file.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

NODES = [f"node{i:02d}" for i in range(1, 9)]
UUID = "00000000-0000-0000-0000-000000000000"


def nvpair(owner: str, name: str, value: str) -> str:
    return f'<nvpair id="{owner}-{name}" name="{name}" value="{value}"/>'


def primitive(rid: str, provider: str, kind: str, params: dict[str, str]) -> str:
    attrs = "".join(nvpair(f"{rid}-ia", k, v) for k, v in params.items())
    return (
        f'<primitive id="{rid}" class="ocf" provider="{provider}" type="{kind}">'
        f'<instance_attributes id="{rid}-ia">{attrs}</instance_attributes>'
        f'<operations><op id="{rid}-mon" name="monitor" interval="20s"/></operations></primitive>'
    )


def op(rid: str, node: str, name: str, rc: int, call: int, interval: int = 0) -> str:
    key = f"{call}:1:{rc}:{UUID}"
    return (
        f'<lrm_rsc_op id="{rid}_{name}_{interval}" operation="{name}" call-id="{call}" '
        f'rc-code="{rc}" op-status="0" interval="{interval}" on_node="{node}" '
        f'transition-key="{key}" transition-magic="0:{rc};{key}" crm_feature_set="3.17.4" '
        f'last-rc-change="1700000000" exec-time="5" queue-time="0" '
        f'op-digest="00000000000000000000000000000000"/>'
    )


def generate(groups: int, per_group: int, seed: int) -> str:
    rng = random.Random(seed)
    resources: list[str] = []
    constraints: list[str] = []
    lrm: dict[str, list[str]] = {n: [] for n in NODES}
    call = 10
    for g in range(groups):
        home = NODES[g % len(NODES)]
        other = NODES[(g + 1) % len(NODES)]
        members = [
            (
                "fs",
                "heartbeat",
                "Filesystem",
                {"device": f"/dev/drbd/by-res/r{g}", "directory": f"/srv/g{g}", "fstype": "xfs"},
            ),
            ("db", "heartbeat", "pgsql", {"pgdata": f"/srv/g{g}/pgdata", "pgport": str(5000 + g)}),
        ]
        members += [
            (f"app{i}", "heartbeat", "anything", {"binfile": f"/opt/app{i}"})
            for i in range(per_group - 4)
        ]
        members.append(("ip", "heartbeat", "IPaddr2", {"ip": f"10.{g // 250}.{g % 250}.1"}))
        body = "".join(primitive(f"g{g}-{m[0]}", m[1], m[2], m[3]) for m in members)
        resources.append(f'<group id="g{g}">{body}</group>')
        drbd = f"g{g}-drbd"
        drbd_xml = primitive(drbd, "linbit", "drbd", {"drbd_resource": f"r{g}"})
        if g % 10 == 0:
            promotable = nvpair(f"ms{g}", "promotable", "true")
            meta = f'<meta_attributes id="ms{g}-meta">{promotable}</meta_attributes>'
            resources.append(f'<clone id="ms{g}">{meta}{drbd_xml}</clone>')
            lrm[home].append(
                _lrm(
                    f"{drbd}:0",
                    "linbit",
                    "drbd",
                    [
                        op(drbd, home, "start", 0, call),
                        op(drbd, home, "promote", 0, call + 1),
                        op(drbd, home, "monitor", 8, call + 2, 29000),
                    ],
                )
            )
            lrm[other].append(
                _lrm(
                    f"{drbd}:1",
                    "linbit",
                    "drbd",
                    [
                        op(drbd, other, "start", 0, call),
                        op(drbd, other, "monitor", 0, call + 1, 31000),
                    ],
                )
            )
            constraints.append(
                f'<rsc_colocation id="c{g}" score="INFINITY" rsc="g{g}" '
                f'with-rsc="ms{g}" with-rsc-role="Promoted"/>'
            )
        else:
            resources.append(drbd_xml)
            lrm[home].append(_lrm(drbd, "linbit", "drbd", [op(drbd, home, "start", 0, call)]))
            constraints.append(
                f'<rsc_colocation id="c{g}" score="INFINITY" rsc="g{g}" with-rsc="{drbd}"/>'
            )
        first = f'first="ms{g}" first-action="promote"' if g % 10 == 0 else f'first="{drbd}"'
        constraints.append(f'<rsc_order id="o{g}" {first} then="g{g}"/>')
        for m in members:
            rid = f"g{g}-{m[0]}"
            call += 3
            lrm[home].append(
                _lrm(
                    rid,
                    m[1],
                    m[2],
                    [
                        op(rid, home, "monitor", 7, call),
                        op(rid, home, "start", 0, call + 1),
                        op(rid, home, "monitor", 0, call + 2, 20000),
                    ],
                )
            )
            lrm[other].append(_lrm(rid, m[1], m[2], [op(rid, other, "monitor", 7, call)]))
        if g and rng.random() < 0.5:
            peer = rng.randrange(g)
            constraints.append(
                f'<rsc_order id="dep{g}" first="g{peer}" then="g{g}" kind="Optional"/>'
            )
        if g % 50 == 49:
            refs = "".join(f'<resource_ref id="g{g - i}-ip"/>' for i in range(5))
            constraints.append(
                f'<rsc_order id="set{g}"><resource_set id="set{g}-a" sequential="false">'
                f"{refs}</resource_set></rsc_order>"
            )
    node_defs = "".join(f'<node id="{i + 1}" uname="{n}"/>' for i, n in enumerate(NODES))
    states = "".join(
        f'<node_state id="{i + 1}" uname="{n}" in_ccm="true" crmd="online" join="member" '
        f'expected="member"><lrm id="{i + 1}"><lrm_resources>{"".join(lrm[n])}'
        f"</lrm_resources></lrm></node_state>"
        for i, n in enumerate(NODES)
    )
    return (
        '<cib crm_feature_set="3.17.4" validate-with="pacemaker-3.9" epoch="1" num_updates="0" '
        'admin_epoch="0" have-quorum="1" dc-uuid="1"><configuration><crm_config>'
        '<cluster_property_set id="opts">'
        + nvpair("opts", "cluster-name", "bench")
        + nvpair("opts", "stonith-enabled", "false")
        + f"</cluster_property_set></crm_config><nodes>{node_defs}</nodes>"
        f"<resources>{''.join(resources)}</resources>"
        f"<constraints>{''.join(constraints)}</constraints></configuration>"
        f"<status>{states}</status></cib>\n"
    )


def _lrm(rid: str, provider: str, kind: str, ops: list[str]) -> str:
    return (
        f'<lrm_resource id="{rid}" class="ocf" provider="{provider}" type="{kind}">'
        f"{''.join(ops)}</lrm_resource>"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--groups", type=int, default=1000)
    parser.add_argument("--per-group", type=int, default=10, help="primitives in each group")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    args.output.write_text(generate(args.groups, args.per_group, args.seed))


if __name__ == "__main__":
    main()
