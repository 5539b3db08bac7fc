#!/usr/bin/env bash
# Issue 15's footprint figures from an ARM build without a Pi: a Debian bookworm arm64
# (or armhf) root under qemu-user, with Debian's python3, numpy, dump1090-mutability and
# mosquitto, this checkout installed in a venv, then bench/footprint.py run inside it.
# Everything in the root is emulated, dump1090-mutability included, so only the ratios
# to dump1090-mutability mean anything (emulation slows each program by a different
# factor than a real core would: float32 min/max, the demodulator's screen, costs about
# a hundred times native, integer vector code a few times; bench/ops.py, run last on
# both sides, shows it: read the ratios as an indication, not as Pi figures).
#
#   scripts/pi-qemu-footprint.sh [footprint.py options]   as root
#
# Default footprint options here: --repeat-busy 60 --quiet-s 11 --rounds 1 (about 11 s
# of IQ per stream: minutes under emulation). The base root tarball is shared with
# scripts/pi-qemu-install.sh (same CACHE); the prepared root is kept in
# $CACHE/footprint-$ARCH and reused (delete it to rebuild).
# Needs: apt-get install mmdebstrap arch-test qemu-user-static binfmt-support
# shellcheck disable=SC2016 # the single-quoted scripts run inside the root
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ARCH=${ARCH:-arm64}
SUITE=bookworm
CACHE=${CACHE:-/var/tmp/adsb-pi}
BASE=$CACHE/$SUITE-$ARCH-base.tar
ROOT=$CACHE/footprint-$ARCH

say() { printf '\n=== pi-qemu-footprint: %s\n' "$*" >&2; }
die() { printf 'pi-qemu-footprint: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (chroot and mounts need it)"
case $ARCH in
    arm64) QEMU=aarch64 ;;
    armhf) QEMU=arm ;;
    *) die "ARCH must be arm64 or armhf" ;;
esac
[ -e "/proc/sys/fs/binfmt_misc/qemu-$QEMU" ] ||
    die "qemu-$QEMU is not registered with binfmt_misc: apt-get install qemu-user-static binfmt-support"
if [ ! -s "$BASE" ]; then
    say "no base root yet: building it with mmdebstrap"
    mmdebstrap --format=tar --arch="$ARCH" --variant=minbase \
        --include=systemd,udev,ca-certificates,iproute2,procps \
        "$SUITE" "$BASE.part" "deb http://deb.debian.org/debian $SUITE main"
    mv "$BASE.part" "$BASE"
fi

in_root() {
    unshare -m --propagation private sh -c '
        set -e
        root=$1 shared=$2 script=$3
        shift 3
        mount -t proc proc "$root/proc"
        mount --rbind /sys "$root/sys"
        mount --rbind /dev "$root/dev"
        mount -t tmpfs tmpfs "$root/run"
        mount -t tmpfs tmpfs "$root/tmp"
        mkdir -p "$root/shared"
        mount --bind "$shared" "$root/shared"
        exec chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
            HOME=/root LANG=C.UTF-8 OPENBLAS_NUM_THREADS=1 \
            ${http_proxy:+http_proxy=$http_proxy} ${https_proxy:+https_proxy=$https_proxy} \
            /bin/bash -euo pipefail -c "$script" bash "$@"
    ' sh "$ROOT" "$SHARED" "$@"
}

SHARED=$(cd "$SRC/../shared" && pwd) || die "no ../shared beside the checkout (its data/iq is read)"
if [ ! -e "$ROOT/.prepared" ]; then
    say "preparing $ROOT (apt inside the root: several minutes under emulation)"
    rm -rf --one-file-system -- "$ROOT"
    mkdir -p "$ROOT"
    tar -C "$ROOT" -xf "$BASE"
    cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
    if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
        cp /usr/local/share/ca-certificates/*.crt "$ROOT/usr/local/share/ca-certificates/"
    fi
    in_root 'update-ca-certificates >/dev/null
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            python3 python3-venv python3-numpy dump1090-mutability mosquitto >/dev/null'
    touch "$ROOT/.prepared"
fi

say "copying this checkout into the root and installing it in a venv (Debian's numpy)"
rm -rf --one-file-system -- "$ROOT/root/adsb-agent"
mkdir -p "$ROOT/root/adsb-agent"
tar -C "$SRC" --exclude=.git --exclude=.venv --exclude='*.egg-info' --exclude=__pycache__ \
    --exclude=.pytest_cache --exclude=.ruff_cache --exclude=build -cf - . |
    tar -C "$ROOT/root/adsb-agent" -xf -
in_root 'cd /root/adsb-agent
    [ -x /root/venv/bin/python ] || python3 -m venv --system-site-packages /root/venv
    /root/venv/bin/pip install -q --disable-pip-version-check -e . 2>&1 | tail -n 3
    /root/venv/bin/python -c "import numpy, platform; print(platform.machine(), \"numpy\", numpy.__version__)"'

say "bench/footprint.py inside the $ARCH root"
if [ "$#" -eq 0 ]; then
    set -- --repeat-busy 60 --quiet-s 11 --rounds 1
fi
in_root 'cd /root/adsb-agent && ADSB_AGENT_SHARED=/shared /root/venv/bin/python bench/footprint.py "$@"' "$@"

say "how emulation bends the ratios: bench/ops.py here and inside the root"
python3 "$SRC/bench/ops.py" 2>/dev/null || echo "(no numpy on this host's python3: run bench/ops.py in the venv)"
in_root 'cd /root/adsb-agent && /root/venv/bin/python bench/ops.py'
