#!/usr/bin/env bash
# Install adsb-agent the way a Raspberry Pi (64-bit OS) gets it, without a Pi: build a
# Debian bookworm arm64 root with mmdebstrap, copy this checkout in, and run install.sh
# in it under qemu-user. In the chroot systemd is not PID 1, so this exercises the
# installer's "install files, enable for the next boot, start nothing" path. Then
# `adsb-agent demo` and `adsb-agent check` run inside, and the venv must be using
# Debian's python3-numpy (1.24 in bookworm), not a pip-built one; last, --uninstall.
#
#   scripts/pi-qemu-install.sh            as root; 10-20 minutes (everything emulated)
#
# Needs: apt-get install mmdebstrap arch-test qemu-user-static binfmt-support
# Environment:
#   ARCH=arm64     armhf emulates 32-bit Raspberry Pi OS (no numpy wheels there: the
#                  point of using Debian's python3-numpy)
#   MIRROR=URL     Debian mirror (default: the one apt uses on this host)
#   CACHE=DIR      where the base root tarball is kept between runs (/var/tmp/adsb-pi)
#   KEEP=1         keep the root afterwards (its path is printed)
# Not part of the test suite (too slow); tests/test_install.py covers install.sh's
# logic in a mount namespace on the host.
# shellcheck disable=SC2016 # the single-quoted scripts run inside the root
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ARCH=${ARCH:-arm64}
SUITE=bookworm
CACHE=${CACHE:-/var/tmp/adsb-pi}
KEEP=${KEEP:-0}
# What a Raspberry Pi OS Lite image has that a minimal Debian root lacks and the
# installer relies on: systemd (systemctl, systemd-sysusers), udev, and a network stack.
BASE_PACKAGES=systemd,udev,ca-certificates,iproute2,procps

say() { printf '\n=== pi-qemu-install: %s\n' "$*"; }
die() { printf 'pi-qemu-install: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (mmdebstrap, chroot and mounts need it)"
command -v mmdebstrap >/dev/null ||
    die "mmdebstrap is missing: apt-get install mmdebstrap arch-test qemu-user-static binfmt-support"
case $ARCH in
    arm64) QEMU=aarch64 ;;
    armhf) QEMU=arm ;;
    *) die "ARCH must be arm64 or armhf" ;;
esac
[ -e "/proc/sys/fs/binfmt_misc/qemu-$QEMU" ] ||
    update-binfmts --enable "qemu-$QEMU" 2>/dev/null ||
    die "qemu-$QEMU is not registered with binfmt_misc: apt-get install qemu-user-static binfmt-support"

# The Debian mirror apt already uses here (a deb822 URIs: line or a one-line deb entry).
host_mirror() {
    local f
    for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -r "$f" ] || continue
        awk '/^URIs:/ && $2 ~ /\/debian\/?$/ { print $2; exit }
             /^deb / && $0 ~ /\/debian\/? / { for (i = 2; i <= NF; i++) if ($i ~ /^http/) { print $i; exit } }' "$f"
    done | head -n 1
}
MIRROR=${MIRROR:-$(host_mirror)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}

mkdir -p "$CACHE"
BASE=$CACHE/$SUITE-$ARCH-base.tar
if [ ! -s "$BASE" ]; then
    say "building the $SUITE $ARCH base root from $MIRROR (cached as $BASE)"
    mmdebstrap --format=tar --arch="$ARCH" --variant=minbase --include="$BASE_PACKAGES" \
        "$SUITE" "$BASE.part" "deb $MIRROR $SUITE main" "deb $MIRROR $SUITE-updates main"
    mv "$BASE.part" "$BASE"
else
    say "reusing the base root $BASE (delete it to rebuild)"
fi

ROOT=$(mktemp -d "$CACHE/root.XXXXXX")
cleanup() {
    if [ "$KEEP" = 1 ]; then
        say "kept the root: $ROOT"
    else
        rm -rf --one-file-system -- "$ROOT"
    fi
}
trap cleanup EXIT
tar -C "$ROOT" -xf "$BASE"
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
# Local CAs this host trusts (a TLS-inspecting proxy, a private index) go in too, as
# they would on a Pi on the same network: pip fetches over HTTPS.
LOCAL_CAS=$(find /usr/local/share/ca-certificates -name '*.crt' 2>/dev/null | wc -l)
if [ "$LOCAL_CAS" -gt 0 ]; then
    cp /usr/local/share/ca-certificates/*.crt "$ROOT/usr/local/share/ca-certificates/"
    say "trusting this host's $LOCAL_CAS local CA(s) in the root too"
fi
# The checkout as it is (uncommitted changes included), without venvs and caches.
mkdir -p "$ROOT/root/adsb-agent"
tar -C "$SRC" --exclude=.git --exclude=.venv --exclude='*.egg-info' --exclude=__pycache__ \
    --exclude=.pytest_cache --exclude=.ruff_cache --exclude=build -cf - . |
    tar -C "$ROOT/root/adsb-agent" -xf -

# Run a shell script in the root with /proc, /sys, /dev and an empty /run (no systemd
# there: what a chroot on a build host or an image builder sees). The mounts live in a
# private mount namespace and vanish with it.
in_root() {
    unshare -m --propagation private sh -c '
        set -e
        root=$1
        shift
        mount -t proc proc "$root/proc"
        mount --rbind /sys "$root/sys"
        mount --rbind /dev "$root/dev"
        mount -t tmpfs tmpfs "$root/run"
        mount -t tmpfs tmpfs "$root/tmp"
        exec chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
            HOME=/root LANG=C.UTF-8 ${PIP_CERT:+PIP_CERT=/etc/ssl/certs/ca-certificates.crt} \
            ${http_proxy:+http_proxy=$http_proxy} ${https_proxy:+https_proxy=$https_proxy} \
            ${no_proxy:+no_proxy=$no_proxy} /bin/bash -euo pipefail -c "$1"
    ' sh "$ROOT" "$1"
}

in_root 'update-ca-certificates >/dev/null'
say "machine in the root: $(in_root 'uname -m; . /etc/os-release; echo "$PRETTY_NAME"' | tr '\n' ' ')"

say "sudo ./install.sh (inside the $ARCH root, under qemu-$QEMU)"
in_root 'cd /root/adsb-agent && ./install.sh'

say "which numpy the agent's venv uses"
in_root '/opt/adsb-agent/venv/bin/python - <<EOF
import numpy, serial
print("numpy", numpy.__version__, "from", numpy.__file__)
print("pyserial", serial.__version__, "from", serial.__file__)
assert numpy.__file__.startswith("/usr/lib/python3/dist-packages/"), "numpy not from Debian"
EOF
dpkg-query -W python3-numpy python3-serial python3-systemd'

say "adsb-agent demo (last lines)"
in_root 'adsb-agent demo > /tmp/demo.out 2>&1 || { cat /tmp/demo.out; exit 1; }
tail -n 3 /tmp/demo.out
test "$(grep -c "\"type\":\"event\"" /tmp/demo.out)" -gt 0'

say "adsb-agent check (FAIL lines are expected: no dongle, no broker, no systemd here)"
in_root 'adsb-agent check --config /etc/adsb-agent/agent.toml || echo "(check exit status $?)"'

say "enabled for the next boot"
in_root 'ls -l /etc/systemd/system/multi-user.target.wants/adsb-agent.service'

say "./install.sh --uninstall"
in_root 'cd /root/adsb-agent && ./install.sh --uninstall
test ! -e /opt/adsb-agent && test ! -e /etc/systemd/system/adsb-agent.service
test -e /etc/adsb-agent/agent.toml'

say "OK: installed, demo ran on Debian's numpy, check ran, uninstalled ($ARCH, $SUITE)"
