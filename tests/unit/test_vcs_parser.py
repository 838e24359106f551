"""main.cf's grammar: values, includes, links, group dependencies, one-line errors, secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from haprotect.errors import ClusterConfigError
from haprotect.redact import REDACTED
from haprotect.sources.vcs.config import MainCf
from haprotect.sources.vcs.parser import parse_main_cf
from haprotect.sources.vcs.source import read_main_cf

GROUP = """\
group app (
        SystemList = { n2 = 1, n1 = 0, n3 = 2 }
        AutoStartList = { n1, n2 }
        Parallel = 0
        Enabled @n3 = 0
        )

        Mount data_mnt (
                MountPoint = "/srv/data"
                BlockDevice = "/dev/vx/dsk/datadg/vol01"
                FSType = vxfs
                FsckOpt = "-y \\"quoted\\" \\\\ end"
                Critical = 0
                )

        DiskGroup data_dg (
                DiskGroup = datadg
                )

        data_mnt requires data_dg
"""


def parse(text: str, origin: str = "main.cf") -> MainCf:
    return parse_main_cf(text, origin)


def error_of(text: str, origin: str = "main.cf") -> str:
    with pytest.raises(ClusterConfigError) as caught:
        parse(text, origin)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_values_scalars_lists_associations_and_per_system() -> None:
    config = parse(GROUP)
    group = config.groups["app"]
    assert group.systems() == ["n1", "n2", "n3"]  # by priority, not as written
    assert group.autostart() == ["n1", "n2"]
    assert not group.parallel
    assert group.enabled_on("n1") and not group.enabled_on("n3")
    mount = config.resources["data_mnt"]
    assert mount.type == "Mount" and mount.group == "app"
    assert mount.attrs.text("FsckOpt") == '-y "quoted" \\ end'
    assert not mount.critical() and mount.enabled()
    assert group.links[0][:2] == ("data_mnt", "data_dg")
    assert mount.where.line == 8


def test_comments_of_both_kinds_are_skipped_and_lines_still_count() -> None:
    text = "// heading\n/* a\nblock */ group g ( // trailing\n SystemList = { a = 0 } /* x */\n)\n"
    text += "Mount m (\nMountPoint = /m//comment after a word\n)\n"
    config = parse(text)
    assert config.groups["g"].systems() == ["a"]
    assert config.resources["m"].attrs.text("MountPoint") == "/m"
    assert config.resources["m"].where.line == 6


def test_cluster_systems_and_group_dependencies() -> None:
    text = (
        'include "types.cf"\ncluster c ( UseFence = SCSI3 )\nsystem n1 ( )\nsystem n2 ( )\n'
        + GROUP
        + "group web ( SystemList = { n1 = 0 } Parallel = 1 ClusterList = { c = 0, dr = 1 } )\n"
        "requires group app online global soft\n"
        "group report ( SystemList = { n2 = 0 } )\n"
        "requires group app offline local\n"
    )
    config = parse(text)
    assert config.cluster_name == "c"
    assert config.systems == ["n1", "n2"]
    assert config.groups["web"].parallel
    assert config.groups["web"].clusters() == ["c", "dr"]
    deps = {(d.parent, d.child): d.words for d in config.group_dependencies}
    assert deps == {("web", "app"): "online global soft", ("report", "app"): "offline local"}
    assert config.missing_includes == ["types.cf"]


def test_includes_resolve_beside_the_file_and_missing_ones_leave_types_unknown(
    tmp_path: Path,
) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "types.cf").write_text(
        "type Mount (\n static str ArgList[] = { MountPoint, BlockDevice }\n"
        " str MountPoint\n str BlockDevice\n str ActivationMode{}\n int VxFSMountLock = 1\n)\n"
    )
    main = tmp_path / "conf" / "main.cf"
    main.write_text('include "types.cf"\ninclude "OracleTypes.cf"\n' + GROUP)
    config = read_main_cf(main)
    assert config.types["Mount"] == {"ArgList", "MountPoint", "BlockDevice", "ActivationMode",
                                     "VxFSMountLock"}  # fmt: skip
    assert config.missing_includes == ["OracleTypes.cf"]
    assert "data_mnt" in config.resources


def test_an_error_in_an_included_file_names_that_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "types.cf").write_text("type Mount (\n str MountPoint\n str = 3\n)\n")
    main = tmp_path / "main.cf"
    main.write_text('include "types.cf"\n')
    with pytest.raises(ClusterConfigError, match=r"types\.cf:3: expected an attribute name"):
        read_main_cf(main)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('group g (\n Comment = "open\n)\n', 'main.cf:2: string opened with " is never closed'),
        ("group g ( )\n/* open\n", "main.cf:2: comment opened with /* is never closed"),
        ("group g\nSystemList = { a }\n", "main.cf:2: expected '(' after group g"),
        ("group g ( )\nMount m ( )\nm requires x\n", "main.cf:3: link m requires x: no"),
        ("group g ( )\nrequires group h online local firm\n", "main.cf:2: group g requires"),
        ("group g ( )\nrequires group g sometimes\n", "main.cf:2: requires group g needs"),
        ("group g ( )\nIP a ( )\nIP a ( )\n", "main.cf:3: resource 'a' is defined twice"),
        ("group g ( )\ngroup g ( )\n", "main.cf:2: group 'g' is defined twice"),
        ("group g ( A = { x, y = z } )\n", "main.cf:1: the value of A mixes"),
        ("group g ( A = 1\nA = 2 )\n", "main.cf:2: attribute A of group g is set twice"),
        ("group g ( A = )\n", "main.cf:1: expected the value of A, found ')'"),
        ("frobnicate x\n", "main.cf:1: expected include,"),
        ("include types.cf\n", "main.cf:1: expected a quoted"),
        ("group g ( )\nIP a (\n", "main.cf:3: expected an attribute of resource a or ')', found "
         "the end of the file"),
    ],
)  # fmt: skip
def test_errors_are_one_line_with_file_and_line(text: str, expected: str) -> None:
    assert error_of(text).startswith(expected)


def test_group_links_must_stay_inside_their_group() -> None:
    text = "group g ( )\nIP a ( )\ngroup h ( )\nNIC b ( )\na requires b\n"
    assert error_of(text) == "main.cf:5: link a requires b: a is in group g, not h"


def test_secrets_are_redacted_as_read_and_never_quoted_in_errors() -> None:
    text = (
        "cluster c (\n UserNames = { admin = dpmKpmOnmHomNmmNn, op = GlmElmHlmJlmDlmGkm }\n"
        " Administrators = { admin }\n)\n"
        "group g ( )\n"
        'Oracle o ( Sid = X Pword = "c2VjcmV0" DBAPword = hunter2 )\n'
        "Sybase s ( Server = S SApswd = abcdef )\n"
        'Application a ( StartProgram = "/bin/start --password=hunter3 --user=x" '
        "MonitorPassword @n1 = hunter4 )\n"
    )
    config = parse(text)
    assert config.cluster_attrs.mapping("UserNames") == {"admin": REDACTED, "op": REDACTED}
    assert config.cluster_attrs.items("Administrators") == ("admin",)
    oracle = config.resources["o"].attrs
    assert oracle.text("Pword") == REDACTED and oracle.text("DBAPword") == REDACTED
    assert oracle.text("Sid") == "X"
    assert config.resources["s"].attrs.text("SApswd") == REDACTED
    app = config.resources["a"].attrs
    assert app.text("StartProgram") == f"/bin/start --password={REDACTED} --user=x"
    assert app.get("MonitorPassword", "n1") == REDACTED
    message = error_of("group g ( )\nOracle o ( Pword = { hunter5 = = } )\n")
    assert "hunter5" not in message and message.startswith("main.cf:2:")


def test_control_characters_in_messages_are_escaped() -> None:
    message = error_of("group g ( )\nIP a ( )\nIP\tb\x07 ( )\nb\x07 requires zz\n")
    assert "\x07" not in message and "\\x07" in message


def test_a_cycle_of_group_dependencies_is_refused_at_the_dependency_closing_it() -> None:
    text = (
        "group a ( )\nrequires group b online local firm\n"
        "group b ( )\nrequires group c offline local\n"
        "group c ( )\nrequires group a online global soft\n"
    )
    assert error_of(text) == "main.cf:6: group dependency cycle: a -> b -> c -> a"
    self_loop = "group a ( )\nrequires group a online local firm\n"
    assert error_of(self_loop) == "main.cf:2: group dependency cycle: a -> a"
