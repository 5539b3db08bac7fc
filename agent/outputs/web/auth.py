"""Who may see the page: nobody but loopback without a password, anyone with it.

What the page shows (which light aircraft are being watched) is sensitive, and the LAN
at a strip is not a trusted network. So a web server bound to any address that is not
loopback refuses to start without a password, and then every request needs it: HTTP
Basic (what a phone's browser asks for once and then sends by itself, also on the
event stream) or `Authorization: Bearer` (scripts). Never in a URL: URLs end up in
browser history, proxies and logs.

The comparison is constant-time over fixed-length SHA-256 digests, so neither the
length of the secret nor how many leading bytes a guess got right shows in the time
an answer takes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path

from agent.errors import ConfigError

# The file systemd's LoadCredential= puts in $CREDENTIALS_DIRECTORY.
CREDENTIAL_NAME = "http-password"
# A secret shorter than this is guessed in a day over a LAN.
MIN_PASSWORD_CHARS = 8
REALM = "adsb-agent"


def is_loopback(bind: str) -> bool:
    """Only the machine itself can reach a loopback address (127.0.0.0/8, ::1)."""
    return ipaddress.ip_address(bind).is_loopback


def password_path(
    password_file: str | None, environ: Mapping[str, str] | None = None
) -> Path | None:
    """The configured file, else systemd's credential when there is one."""
    if password_file:
        return Path(password_file)
    env = os.environ if environ is None else environ
    creds = env.get("CREDENTIALS_DIRECTORY")
    if creds and (Path(creds) / CREDENTIAL_NAME).is_file():
        return Path(creds) / CREDENTIAL_NAME
    return None


def read_password(path: Path) -> bytes:
    """The secret in `path` (one line; the trailing newline is not part of it)."""
    try:
        secret = path.read_bytes().rstrip(b"\r\n")
    except OSError as err:
        raise ConfigError([f"http.password_file: cannot read {path}: {err.strerror}"]) from None
    if len(secret) < MIN_PASSWORD_CHARS:
        raise ConfigError(
            [f"http.password_file: {path} holds fewer than {MIN_PASSWORD_CHARS} characters"]
        )
    return secret


class Gate:
    """Says whether a request's Authorization header carries the password.

    With no password (loopback only) every request passes.
    """

    def __init__(self, password: bytes | None):
        self._digest = None if password is None else hashlib.sha256(password).digest()

    @property
    def open(self) -> bool:
        return self._digest is None

    def allows(self, authorization: str | None) -> bool:
        if self._digest is None:
            return True
        offered = hashlib.sha256(offered_secret(authorization)).digest()
        return hmac.compare_digest(offered, self._digest)


def offered_secret(authorization: str | None) -> bytes:
    """The secret in a Basic (the password; the user name is ignored) or Bearer header,
    or b"" when there is none (it is still hashed and compared, at the same cost)."""
    if not authorization:
        return b""
    scheme, _, value = authorization.strip().partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer":
        return value.strip().encode("utf-8", "replace")
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True)
        except (binascii.Error, ValueError):
            return b""
        return decoded.partition(b":")[2]
    return b""
