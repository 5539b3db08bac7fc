"""Mode S frames built from explicit values, bit for bit as a transponder sends them.

Pure functions: every argument is a physical value (address, degrees, feet, knots) and
the result is the 7- or 14-byte frame with its parity from agent.crc, so a simulated
stream exercises the same CRC, decoding and tracking code as a real one.

Layouts (bit 1 = most significant bit of the first byte):

    DF17  DF(5) CA(3) AA(24) ME(56) PI(24)        PI = CRC            (syndrome 0)
    DF11  DF(5) CA(3) AA(24) PI(24)               PI = CRC ^ IID      (syndrome IID)
    DF4   DF(5) FS(3) DR(5) UM(6) AC(13) AP(24)   AP = CRC ^ address  (syndrome address)
    DF5   DF(5) FS(3) DR(5) UM(6) ID(13) AP(24)

ME layouts are drawn above each builder.
"""

from __future__ import annotations

import math

from agent import crc

# Number of latitude zones between equator and pole in CPR (DO-260B).
CPR_NZ = 15
_CPR_BITS = 17
_CPR_MASK = (1 << _CPR_BITS) - 1

# The ADS-B 6-bit character set: index = code. '#' marks codes no transponder may send.
CHARSET = "#ABCDEFGHIJKLMNOPQRSTUVWXYZ##### ###############0123456789######"

# Emitter category set letter -> identification type code.
_CATEGORY_TC = {"D": 1, "C": 2, "B": 3, "A": 4}

# 25 ft altitude coding covers -1000 .. 50175 ft (11-bit count); above, 100 ft Gillham.
ALT25_MIN_FT = -1000
ALT25_MAX_FT = 50175

# DF17 capability (CA): transponder level 2+, on the ground / airborne.
CA_GROUND = 4
CA_AIRBORNE = 5

# TC 28 subtype 1 emergency states.
EMERGENCY_NONE = 0
EMERGENCY_GENERAL = 1
EMERGENCY_NO_COMM = 4
EMERGENCY_UNLAWFUL = 5
# Squawks that mean an emergency and the TC 28 state a transponder reports with them.
EMERGENCY_SQUAWKS = {
    "7500": EMERGENCY_UNLAWFUL,
    "7600": EMERGENCY_NO_COMM,
    "7700": EMERGENCY_GENERAL,
}


def _check_icao(icao: int) -> None:
    if not 0 <= icao <= 0xFFFFFF:
        raise ValueError(f"ICAO address {icao:#x} is not 24 bits")


def extended_squitter(icao: int, me: int, *, ca: int = CA_AIRBORNE) -> bytes:
    """DF17 frame around a 56-bit ME field; PI makes the syndrome 0."""
    _check_icao(icao)
    if not 0 <= ca <= 7 or not 0 <= me < (1 << 56):
        raise ValueError("CA must be 3 bits and ME 56 bits")
    data = ((17 << 3 | ca) << 80 | icao << 56 | me).to_bytes(11, "big")
    return data + crc.crc24(data).to_bytes(3, "big")


def _address_parity(head32: int, icao: int) -> bytes:
    """56-bit address/parity frame: AP = CRC(data) XOR address, so syndrome = address."""
    _check_icao(icao)
    data = head32.to_bytes(4, "big")
    return data + (crc.crc24(data) ^ icao).to_bytes(3, "big")


# --- field codings ------------------------------------------------------------------


def _gillham13(alt_ft: float) -> int:
    """13-bit AC field (M = 0) in 100 ft Gillham (Gray) code.

    v = alt/100 + 13 = 5 * n500 + n100 with n100 in 1..5; the 500 ft count is Gray coded
    in D2 D4 A1 A2 A4 B1 B2 B4, the 100 ft count in C1 C2 C4 with the "5 -> 7" twist and
    reflected when the 500 ft count is odd.
    """
    v = round(alt_ft / 100.0) + 13
    n500 = (v - 1) // 5
    n100 = v - 5 * n500
    if not 0 <= n500 <= 255:
        raise ValueError(f"altitude {alt_ft} ft outside the Gillham range")
    if n500 % 2:
        n100 = 6 - n100
    c = n100 if n100 != 5 else 7
    c ^= c >> 1
    g = n500 ^ (n500 >> 1)
    bit = {
        "D2": (g >> 7) & 1, "D4": (g >> 6) & 1, "A1": (g >> 5) & 1, "A2": (g >> 4) & 1,
        "A4": (g >> 3) & 1, "B1": (g >> 2) & 1, "B2": (g >> 1) & 1, "B4": g & 1,
        "C1": (c >> 2) & 1, "C2": (c >> 1) & 1, "C4": c & 1,
    }  # fmt: skip
    return _pack13(bit)


def _pack13(bit: dict[str, int]) -> int:
    """Named pulse bits in the 13-bit Mode A/C field order; absent bits (M, X) are 0."""
    out = 0
    for name in _FIELD13:
        out = out << 1 | bit.get(name, 0)
    return out


# The 13-bit altitude / identity field, most significant first (M or X is bit 7).
_FIELD13 = ("C1", "A1", "C2", "A2", "C4", "A4", "M/X", "B1", "D1", "B2", "D2", "B4", "D4")


def altitude_code13(alt_ft: float) -> int:
    """13-bit AC field of DF0/4/16/20 (M = 0): 25 ft steps with Q = 1 when in range.

    Layout C1 A1 C2 A2 C4 A4 M B1 Q B2 D2 B4 D4; with Q = 1 the 11-bit count
    (alt + 1000) / 25 fills every bit but M and Q, most significant first.
    """
    if ALT25_MIN_FT <= alt_ft <= ALT25_MAX_FT:
        n = round((alt_ft - ALT25_MIN_FT) / 25.0)
        return (n >> 5) << 7 | ((n >> 4) & 1) << 5 | 1 << 4 | (n & 0xF)
    return _gillham13(alt_ft)


def altitude_code12(alt_ft: float) -> int:
    """12-bit altitude field of DF17 airborne position: the 13-bit code without M."""
    ac13 = altitude_code13(alt_ft)
    return (ac13 >> 7) << 6 | (ac13 & 0x3F)


def squawk_code(squawk: str) -> int:
    """13-bit identity field: C1 A1 C2 A2 C4 A4 X B1 D1 B2 D2 B4 D4 from four octal digits."""
    if len(squawk) != 4 or any(ch not in "01234567" for ch in squawk):
        raise ValueError(f"squawk {squawk!r} is not four octal digits")
    a, b, c, d = (int(ch) for ch in squawk)
    bit = {}
    for name, digit in (("A", a), ("B", b), ("C", c), ("D", d)):
        for weight in (4, 2, 1):
            bit[f"{name}{weight}"] = int(bool(digit & weight))
    return _pack13(bit)


def cpr_nl(lat: float) -> int:
    """Number of longitude zones at `lat` (CPR NL function, NZ = 15)."""
    alat = abs(lat)
    if alat == 0.0:
        return 59
    if alat == 87.0:
        return 2
    if alat > 87.0:
        return 1
    a = 1.0 - math.cos(math.pi / (2 * CPR_NZ))
    b = math.cos(math.radians(alat)) ** 2
    return math.floor(2.0 * math.pi / math.acos(1.0 - a / b))


def cpr_encode(lat: float, lon: float, *, odd: bool, surface: bool = False) -> tuple[int, int]:
    """17-bit CPR (YZ, XZ) of a position, even or odd format.

    Surface positions use zones a quarter the airborne size (90 degrees instead of
    360 divided among the same zone counts): the same 17 bits then resolve 1.25 m.
    """
    i = 1 if odd else 0
    span = 90.0 if surface else 360.0
    scale = float(1 << _CPR_BITS)
    dlat = span / (4 * CPR_NZ - i)
    yz = math.floor(scale * ((lat % dlat) / dlat) + 0.5)
    rlat = dlat * (yz / scale + math.floor(lat / dlat))
    dlon = span / max(cpr_nl(rlat) - i, 1)
    xz = math.floor(scale * ((lon % dlon) / dlon) + 0.5)
    return yz & _CPR_MASK, xz & _CPR_MASK


def _movement(gs_kt: float) -> int:
    """7-bit surface movement code: ground speed to the nearest step, finer when slow."""
    # (lower bound kt, step kt, first code) per band; codes grow with speed.
    bands = ((0.125, 0.125, 2), (1.0, 0.25, 9), (2.0, 0.5, 13), (15.0, 1.0, 39),
             (70.0, 2.0, 94), (100.0, 5.0, 109))  # fmt: skip
    if gs_kt < 0.125:
        return 1  # stopped
    if gs_kt >= 175.0:
        return 124
    for lo, step, first in reversed(bands):
        if gs_kt >= lo:
            return min(first + round((gs_kt - lo) / step), 124)
    raise AssertionError("unreachable")


# --- frame builders -----------------------------------------------------------------


def identification(
    icao: int, callsign: str, category: str = "A0", *, ca: int = CA_AIRBORNE
) -> bytes:
    """DF17 TC 1-4 aircraft identification and category.

    ME: TC(5) CAT(3) C1..C8(6 each). `category` is set letter + number ("A1" light,
    "A7" rotorcraft, "B1" glider); the set letter picks the TC (D=1 .. A=4).
    """
    if len(category) != 2 or category[0] not in _CATEGORY_TC or category[1] not in "01234567":
        raise ValueError(f"category {category!r} is not A0..D7")
    text = callsign.upper().ljust(8)
    if len(text) > 8:
        raise ValueError(f"callsign {callsign!r} longer than 8 characters")
    me = _CATEGORY_TC[category[0]] << 3 | int(category[1])
    for ch in text:
        code = CHARSET.find(ch)
        if ch == "#" or code < 0:
            raise ValueError(f"callsign {callsign!r}: {ch!r} is not in the ADS-B character set")
        me = me << 6 | code
    return extended_squitter(icao, me, ca=ca)


def airborne_position(
    icao: int,
    lat: float,
    lon: float,
    alt_ft: float,
    *,
    odd: bool,
    tc: int = 11,
    surveillance_status: int = 0,
    nic_b: int = 0,
    utc_sync: bool = False,
    ca: int = CA_AIRBORNE,
) -> bytes:
    """DF17 TC 9-18 airborne position with barometric altitude.

    ME: TC(5) SS(2) NICb(1) ALT(12) T(1) F(1) LAT(17) LON(17). The TC encodes the
    position integrity (9 best .. 18 worst); SS 1 = permanent alert (emergency),
    2 = temporary alert (identity change), 3 = SPI.
    """
    if not 9 <= tc <= 18 or not 0 <= surveillance_status <= 3:
        raise ValueError("airborne position needs TC 9-18 and SS 0-3")
    yz, xz = cpr_encode(lat, lon, odd=odd)
    me = tc << 51 | surveillance_status << 49 | (nic_b & 1) << 48 | altitude_code12(alt_ft) << 36
    me |= int(utc_sync) << 35 | int(odd) << 34 | yz << 17 | xz
    return extended_squitter(icao, me, ca=ca)


def surface_position(
    icao: int,
    lat: float,
    lon: float,
    gs_kt: float,
    track_deg: float | None,
    *,
    odd: bool,
    tc: int = 7,
    ca: int = CA_GROUND,
) -> bytes:
    """DF17 TC 5-8 surface position: movement, ground track, CPR in surface zones.

    ME: TC(5) MOV(7) S(1) TRK(7) T(1) F(1) LAT(17) LON(17); TRK in 360/128 degree
    steps, S = 1 when the track is valid.
    """
    if not 5 <= tc <= 8:
        raise ValueError("surface position needs TC 5-8")
    yz, xz = cpr_encode(lat, lon, odd=odd, surface=True)
    trk_ok = track_deg is not None
    trk = round((track_deg % 360.0) * 128.0 / 360.0) % 128 if track_deg is not None else 0
    me = tc << 51 | _movement(gs_kt) << 44 | int(trk_ok) << 43 | trk << 36
    me |= int(odd) << 34 | yz << 17 | xz
    return extended_squitter(icao, me, ca=ca)


def airborne_velocity(
    icao: int,
    gs_kt: float,
    track_deg: float,
    vrate_fpm: float,
    *,
    vr_baro: bool = True,
    gnss_minus_baro_ft: float | None = None,
    nac_v: int = 1,
    ca: int = CA_AIRBORNE,
) -> bytes:
    """DF17 TC 19 airborne velocity over ground (subtype 1; 2 when supersonic).

    ME: TC(5) ST(3) IC(1) IFR(1) NACv(3) Dew(1) Vew(10) Dns(1) Vns(10) VrSrc(1) Svr(1)
    VR(9) res(2) SDif(1) dAlt(7). Speeds are sent as |component| + 1 (0 = unknown),
    the vertical rate in 64 fpm steps and GNSS minus baro altitude in 25 ft steps.
    """
    v_ew = gs_kt * math.sin(math.radians(track_deg))
    v_ns = gs_kt * math.cos(math.radians(track_deg))
    subtype, unit = (1, 1.0) if max(abs(v_ew), abs(v_ns)) < 1022.5 else (2, 4.0)
    vew = min(round(abs(v_ew) / unit) + 1, 1023)
    vns = min(round(abs(v_ns) / unit) + 1, 1023)
    vr = min(round(abs(vrate_fpm) / 64.0) + 1, 511)
    me = 19 << 51 | subtype << 48 | (nac_v & 7) << 43
    me |= int(v_ew < 0) << 42 | vew << 32 | int(v_ns < 0) << 31 | vns << 21
    me |= int(vr_baro) << 20 | int(vrate_fpm < 0) << 19 | vr << 10
    if gnss_minus_baro_ft is not None:
        dalt = min(round(abs(gnss_minus_baro_ft) / 25.0) + 1, 127)
        me |= int(gnss_minus_baro_ft < 0) << 7 | dalt
    return extended_squitter(icao, me, ca=ca)


def aircraft_status(
    icao: int, squawk: str, emergency: int = EMERGENCY_NONE, *, ca: int = CA_AIRBORNE
) -> bytes:
    """DF17 TC 28 subtype 1: emergency/priority state and the Mode A code.

    ME: TC(5) ST(3) ES(3) ID(13) reserved(32).
    """
    if not 0 <= emergency <= 7:
        raise ValueError("emergency state is 3 bits")
    me = 28 << 51 | 1 << 48 | emergency << 45 | squawk_code(squawk) << 32
    return extended_squitter(icao, me, ca=ca)


def all_call_reply(icao: int, *, ca: int = CA_AIRBORNE, iid: int = 0) -> bytes:
    """DF11 all-call reply (acquisition squitter when IID = 0): PI = CRC ^ IID."""
    _check_icao(icao)
    if not 0 <= ca <= 7 or not 0 <= iid <= 0x7F:
        raise ValueError("CA is 3 bits and the interrogator identifier 7 bits")
    data = ((11 << 3 | ca) << 24 | icao).to_bytes(4, "big")
    return data + (crc.crc24(data) ^ iid).to_bytes(3, "big")


def _surveillance_head(df: int, fs: int, dr: int, um: int, field13: int) -> int:
    if not 0 <= fs <= 7 or not 0 <= dr <= 31 or not 0 <= um <= 63:
        raise ValueError("FS is 3 bits, DR 5 bits, UM 6 bits")
    return (df << 3 | fs) << 24 | dr << 19 | um << 13 | field13


def altitude_reply(icao: int, alt_ft: float, *, fs: int = 0, dr: int = 0, um: int = 0) -> bytes:
    """DF4 surveillance altitude reply. FS 0 airborne, 1 on ground, 2/3 alert."""
    return _address_parity(_surveillance_head(4, fs, dr, um, altitude_code13(alt_ft)), icao)


def identity_reply(icao: int, squawk: str, *, fs: int = 0, dr: int = 0, um: int = 0) -> bytes:
    """DF5 surveillance identity reply carrying the squawk."""
    return _address_parity(_surveillance_head(5, fs, dr, um, squawk_code(squawk)), icao)
