"""The tests exercise the package of the checkout they belong to, not another copy."""

from pathlib import Path

import scrapewarden


def test_package_under_test_is_this_checkouts():
    checkout = Path(__file__).resolve().parents[1]
    package = Path(scrapewarden.__file__).resolve()
    assert package.is_relative_to(checkout / "src"), f"imported {package}, expected under {checkout}/src"
