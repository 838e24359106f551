"""The service's configuration: the default needs no file, a wrong file is named."""

from __future__ import annotations

from pathlib import Path

import pytest

from haprotect.errors import InputError
from haprotect.service.config import RepositoryConfig, ServiceConfig, load_config


def test_no_file_gives_the_default_under_the_state_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HAPROTECT_CONFIG", raising=False)
    monkeypatch.setenv("HAPROTECT_STATE_DIR", str(tmp_path))
    config = load_config(None, default=tmp_path / "absent.yaml")
    assert config.catalog_url == f"sqlite:///{tmp_path / 'catalog.db'}"
    assert config.listen == "127.0.0.1:8470"


def test_a_file_is_read_and_its_errors_name_the_line(tmp_path: Path) -> None:
    good = tmp_path / "service.yaml"
    good.write_text(
        "repositories:\n"
        "  - {name: local, url: /srv/repo, password_file: /etc/pw}\n"
        "  - {name: s3, url: 's3://bucket/p'}\n"
        "copy_targets: [s3]\n"
        "limits: {concurrent: 4}\n"
    )
    config = load_config(good)
    assert config.limits.concurrent == 4
    assert config.limits.per_repository == 1
    assert [r.name for r in config.copy_repositories(2, "/srv/repo")] == ["s3"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("limits:\n  concurrent: 0\n")
    with pytest.raises(InputError, match=r"bad\.yaml:2: limits\.concurrent"):
        load_config(bad)


def test_unknown_copy_targets_and_twice_named_repositories_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "service.yaml"
    path.write_text("repositories:\n  - {name: a, url: /r1}\n  - {name: a, url: /r2}\n")
    with pytest.raises(InputError, match="repository 'a' is named twice"):
        load_config(path)
    path.write_text("repositories:\n  - {name: a, url: /r1}\ncopy_targets: [b]\n")
    with pytest.raises(InputError, match="copy target 'b' is not one of the repositories"):
        load_config(path)


def test_more_copies_than_targets_is_an_error_not_a_shortfall() -> None:
    config = ServiceConfig(
        repositories=[RepositoryConfig(name="s3", url="s3://b/p")], copy_targets=["s3"]
    )
    assert len(config.copy_repositories(2, "/srv/repo")) == 1
    with pytest.raises(InputError, match="asks for 3 copies but the service has 1"):
        config.copy_repositories(3, "/srv/repo")


def test_a_repository_known_only_by_url_takes_the_default_password_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HAPROTECT_PASSWORD_FILE", "/run/pw")
    repo = ServiceConfig().repository("/srv/other")
    assert repo.password_file == Path("/run/pw")


def test_the_example_configuration_is_valid() -> None:
    example = Path(__file__).resolve().parents[2] / "contrib" / "service.example.yaml"
    config = load_config(example)
    assert [r.name for r in config.repositories] == ["local", "offsite"]
    assert config.copy_targets == ["offsite"]
