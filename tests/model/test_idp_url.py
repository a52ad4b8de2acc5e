"""idp:// URLs: the port is ASCII digits (``str.isdigit`` and ``int`` also take other scripts' digits)."""

from __future__ import annotations

import pytest

from worldtree.model.idp import check_idp_url, split_idp_url


@pytest.mark.parametrize("port", ["\u0663", "\uff19\uff10\uff19\uff10", "+90", " 90", "0", "65536"])
def test_ports_that_are_not_ascii_numbers_are_refused(port: str) -> None:
    assert check_idp_url(f"idp://me:tok@host:{port}") == "engine URL: port must be a number from 1 to 65535"


def test_a_plain_port_and_a_reference() -> None:
    assert split_idp_url("idps://me:tok@host:9091").port == 9091
    assert split_idp_url("idp://host:${PORT}").port == "${PORT}"
