"""app-flush options and its command mode (the HTTP mode runs against the lab)."""

from __future__ import annotations

import pytest

from haprotect.errors import QuiesceError
from haprotect.quiesce import QuiesceSpec
from haprotect.quiesce.app_flush import AppFlushQuiescer, counts


def spec(**options: object) -> QuiesceSpec:
    return QuiesceSpec("app-flush", "application", timeout_seconds=5, options=options)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "give exactly one of 'url'"),
        ({"url": "http://x/flush", "command": ["true"]}, "give exactly one of 'url'"),
        ({"url": "ftp://x"}, "must be an http\\(s\\) URL"),
        ({"command": "app-ctl flush"}, "must be an argument list"),
        ({"url": "http://x", "method": "DELETE"}, "must be one of POST, PUT, GET"),
    ],
)
def test_validation(options: dict[str, object], message: str) -> None:
    with pytest.raises(QuiesceError, match=message):
        AppFlushQuiescer().validate(spec(**options))


def test_a_command_reports_the_counts_of_its_last_json_line() -> None:
    script = 'echo flushing; echo \'{"flushed": 12, "bytes": 3400, "buffered": 0, "x": true}\''
    report = AppFlushQuiescer().hold(spec(command=["/bin/sh", "-c", script], require_empty=True))
    assert (report.details["flushed"], report.details["bytes"], report.details["buffered"]) == (
        "12",
        "3400",
        "0",
    )
    assert "x" not in report.details


def test_require_empty_fails_when_something_stays_buffered() -> None:
    script = 'echo \'{"flushed": 1, "buffered": 3}\''
    with pytest.raises(QuiesceError, match="3 items still buffered after the flush"):
        AppFlushQuiescer().hold(spec(command=["/bin/sh", "-c", script], require_empty=True))


def test_a_failing_flush_command_is_one_line() -> None:
    with pytest.raises(QuiesceError) as caught:
        AppFlushQuiescer().hold(spec(command=["/bin/sh", "-c", "echo 'db down' >&2; exit 2"]))
    assert str(caught.value) == (
        "app-flush of tier application: flush command /bin/sh exited with status 2: db down"
    )


def test_counts_keep_integers_only() -> None:
    assert counts({"flushed": 2, "rows": "3", "bytes": True, "buffered": 0}) == {
        "flushed": "2",
        "buffered": "0",
    }
    assert counts(["flushed"]) == {}
