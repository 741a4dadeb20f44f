"""Listings print their values as they are: an address or a name a watch chose is data,
not rich markup or an emoji code (a README test once met "D1:CD:06:F3:F2:5B" printed as
"D1💿06:F3:F2:5B", for one random address in ~40)."""

from __future__ import annotations

import pytest

from phoneagent.cli.output import emit


def test_values_are_printed_as_they_are(capsys: pytest.CaptureFixture[str]) -> None:
    rows = [{"address": "D1:CD:06:F3:F2:5B", "name": "[/]Watch [bold]:ab:"}]
    emit(rows, ("address", "name"), "Watches", as_json=False)
    out = capsys.readouterr().out
    assert "D1:CD:06:F3:F2:5B" in out and "[/]Watch [bold]:ab:" in out
