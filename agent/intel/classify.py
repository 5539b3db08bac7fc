"""What a contact's own transmissions say about it: callsign kind, nationality, squawk.

Light aircraft usually send their registration as callsign (PT-ABC -> "PTABC"); airlines
send a three-letter ICAO designator and a flight number ("TAM3054"). A registration's
nationality mark names a state, and so does the 24-bit address block: when the two
disagree, that is worth a tag (a foreign-registered aircraft re-flagged, or a spoofed
identity). Squawk codes carry meaning of their own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agent.schema import CallsignKind, SquawkMeaning

# ICAO nationality and registration marks -> ISO 3166 alpha-2 (ICAO Annex 7).
# Longest mark wins, so "VP-B" (Bermuda) is checked before "VP" would be.
_NATIONALITY_MARKS: dict[str, str] = {
    "N": "US",
    "C": "CA",
    "CF": "CA",
    "CG": "CA",
    "XA": "MX",
    "XB": "MX",
    "XC": "MX",
    "PP": "BR",
    "PR": "BR",
    "PS": "BR",
    "PT": "BR",
    "PU": "BR",
    "LV": "AR",
    "LQ": "AR",
    "CC": "CL",
    "CP": "BO",
    "ZP": "PY",
    "CX": "UY",
    "OB": "PE",
    "HC": "EC",
    "HK": "CO",
    "YV": "VE",
    "8R": "GY",
    "PZ": "SR",
    "HP": "PA",
    "TG": "GT",
    "HR": "HN",
    "YS": "SV",
    "YN": "NI",
    "TI": "CR",
    "HI": "DO",
    "CU": "CU",
    "6Y": "JM",
    "HH": "HT",
    "V3": "BZ",
    "C6": "BS",
    "VPB": "BM",
    "VQB": "BM",
    "VPC": "KY",
    "9Y": "TT",
    "8P": "BB",
    "J6": "LC",
    "J8": "VC",
    "V2": "AG",
    "J3": "GD",
    "PJ": "CW",
    "P4": "AW",
    "G": "GB",
    "EI": "IE",
    "F": "FR",
    "D": "DE",
    "I": "IT",
    "EC": "ES",
    "CS": "PT",
    "PH": "NL",
    "OO": "BE",
    "LX": "LU",
    "HB": "CH",
    "OE": "AT",
    "SE": "SE",
    "LN": "NO",
    "OH": "FI",
    "OY": "DK",
    "TF": "IS",
    "SP": "PL",
    "OK": "CZ",
    "OM": "SK",
    "HA": "HU",
    "YR": "RO",
    "LZ": "BG",
    "SX": "GR",
    "TC": "TR",
    "9H": "MT",
    "5B": "CY",
    "S5": "SI",
    "9A": "HR",
    "YU": "RS",
    "E7": "BA",
    "Z3": "MK",
    "ZA": "AL",
    "ES": "EE",
    "YL": "LV",
    "LY": "LT",
    "UR": "UA",
    "EW": "BY",
    "ER": "MD",
    "RA": "RU",
    "4L": "GE",
    "UP": "KZ",
    "4X": "IL",
    "A6": "AE",
    "HZ": "SA",
    "A7": "QA",
    "A9C": "BH",
    "9K": "KW",
    "A4O": "OM",
    "AP": "PK",
    "VT": "IN",
    "4R": "LK",
    "S2": "BD",
    "9N": "NP",
    "EP": "IR",
    "YI": "IQ",
    "JY": "JO",
    "OD": "LB",
    "SU": "EG",
    "CN": "MA",
    "7T": "DZ",
    "TS": "TN",
    "5A": "LY",
    "ST": "SD",
    "ET": "ET",
    "5Y": "KE",
    "5X": "UG",
    "5H": "TZ",
    "9XR": "RW",
    "5N": "NG",
    "9G": "GH",
    "TU": "CI",
    "6V": "SN",
    "TZ": "ML",
    "XT": "BF",
    "5U": "NE",
    "TT": "TD",
    "TJ": "CM",
    "TR": "GA",
    "TN": "CG",
    "9Q": "CD",
    "D2": "AO",
    "9J": "ZM",
    "Z": "ZW",
    "C9": "MZ",
    "7Q": "MW",
    "A2": "BW",
    "V5": "NA",
    "ZS": "ZA",
    "3D": "SZ",
    "7P": "LS",
    "5R": "MG",
    "3B": "MU",
    "JA": "JP",
    "HL": "KR",
    "B": "CN",
    "BHX": "HK",
    "BMX": "MO",
    "RP": "PH",
    "9V": "SG",
    "9M": "MY",
    "PK": "ID",
    "HS": "TH",
    "XV": "VN",
    "XU": "KH",
    "RDPL": "LA",
    "XY": "MM",
    "VH": "AU",
    "ZK": "NZ",
    "P2": "PG",
    "DQ": "FJ",
}
_MARKS_LONGEST_FIRST = sorted(_NATIONALITY_MARKS, key=len, reverse=True)

_AIRLINE = re.compile(r"^[A-Z]{3}[0-9][0-9A-Z]{0,3}$")
_US_REGISTRATION = re.compile(r"^N[1-9][0-9]{0,4}[A-Z]{0,2}$")
_REGISTRATION_BODY = re.compile(r"^[A-Z0-9]{1,5}$")

SQUAWK_MEANING: dict[str, SquawkMeaning] = {
    "7500": "unlawful_interference",
    "7600": "radio_failure",
    "7700": "emergency",
    "7000": "vfr_icao",
    "1200": "vfr_north_america",
    "2000": "no_code_assigned",
    "7777": "military_intercept",
}
EMERGENCY_SQUAWKS = frozenset(("7500", "7600", "7700"))


@dataclass(frozen=True, slots=True)
class Callsign:
    kind: CallsignKind
    country: str | None  # ISO alpha-2 of a registration's nationality mark


def classify_callsign(callsign: str | None) -> Callsign | None:
    if not callsign:
        return None
    cs = callsign.strip().upper()
    if _AIRLINE.match(cs):
        return Callsign("airline", None)
    if _US_REGISTRATION.match(cs):
        return Callsign("registration", "US")
    for mark in _MARKS_LONGEST_FIRST:
        plain = mark.rstrip("-")
        if cs.startswith(plain) and len(cs) > len(plain):
            body = cs[len(plain) :]
            # Outside the US, civil registrations after the mark are letters (mostly 3-4).
            if _REGISTRATION_BODY.match(body) and (
                body.isalpha() or plain in ("JA", "HL", "B", "RA")
            ):
                return Callsign("registration", _NATIONALITY_MARKS[mark])
    return Callsign("other", None)


def squawk_meaning(squawk: str | None) -> SquawkMeaning | None:
    return SQUAWK_MEANING.get(squawk) if squawk else None


def country_mismatch(callsign: Callsign | None, address_country: str | None) -> bool:
    """A registration-like callsign whose nationality differs from the address block's."""
    return (
        callsign is not None
        and callsign.kind == "registration"
        and callsign.country is not None
        and address_country is not None
        and callsign.country != address_country
    )
