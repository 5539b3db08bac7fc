"""Registration country from the ICAO address block."""

from agent.country import country_of


def test_blocks_resolve_to_their_state():
    assert country_of(0x4D2023).iso2 == "MT"  # Malta, the modes1 aircraft
    assert country_of(0xE48A00).iso2 == "BR"
    assert country_of(0xA00001).iso2 == "US"


def test_small_territory_inside_a_larger_block_wins():
    assert country_of(0x400000).iso2 == "BM"  # Bermuda, listed before the UK block
    assert country_of(0x400400).iso2 == "GB"


def test_unallocated_address_has_no_country():
    assert country_of(0x000001) is None
