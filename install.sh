#!/usr/bin/env bash
# adsb-agent installer for Debian 12 / Raspberry Pi OS (64-bit). One command, safe to
# run again (an upgrade keeps /etc/adsb-agent and the outbox):
#
#   sudo ./install.sh                          install or upgrade, then self-check
#   sudo ./install.sh --config site.toml       first install with a prepared site file
#   sudo ./install.sh --uninstall              remove the agent; keep config, outbox, user
#   sudo ./install.sh --uninstall --purge      remove those too
#
# Options:
#   --config FILE       configuration for a first install (default config/agent.toml);
#                       an existing /etc/adsb-agent/agent.toml is never overwritten
#   --volatile-journal  keep the journal in RAM to spare the SD card (firmware_notes)
#   --no-apt            do not install Debian packages
#   --no-systemctl      do not create the user, reload udev/systemd, or start anything
#   --no-venv           do not create the virtual environment
#   --no-check          do not run `adsb-agent check` at the end
#
# A service that fails to start does not stop the install: its last journal lines are
# shown and the self-check runs. Without systemd running (a chroot, an image being
# prepared, a container) the files are installed and the unit enabled for the next
# boot; nothing is reloaded or started (scripts/pi-qemu-install.sh does this).
#
# Dry run: DESTDIR=/tmp/x ./install.sh --no-apt --no-systemctl lays out every file
# under /tmp/x and touches nothing else (no root needed). DESTDIR implies --no-apt
# --no-systemctl --no-check and --no-venv (a venv is not relocatable: its scripts
# name their own path).
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DESTDIR=${DESTDIR:-}
DESTDIR=${DESTDIR%/}
PREFIX=/opt/adsb-agent
VENV=$PREFIX/venv
ETC=/etc/adsb-agent
STATE=/var/lib/adsb-agent
UNIT=/etc/systemd/system/adsb-agent.service
UDEV=/etc/udev/rules.d/60-adsb-agent-rtlsdr.rules
BLACKLIST=/etc/modprobe.d/adsb-agent-blacklist-rtlsdr.conf
SYSUSERS=/etc/sysusers.d/adsb-agent.conf
JOURNALD=/etc/systemd/journald.conf.d/50-adsb-agent-volatile.conf
BIN=/usr/local/bin/adsb-agent
USER_NAME=adsb-agent
# Debian packages: venv; what the agent imports that Debian builds for every Pi, seen
# through --system-site-packages so pip keeps them and never compiles (numpy has no
# wheels for 32-bit ARM: pip would build it from source, and a Pi has no compiler);
# rtl_test/rtl_eeprom for technicians, lsusb. Not from Debian: paho-mqtt (bookworm has
# 1.6, the agent needs 2.x), pyModeS, airportsdata.
APT_PACKAGES=(python3 python3-venv python3-numpy python3-serial python3-systemd
    rtl-sdr usbutils ca-certificates)

UNINSTALL=0 PURGE=0 VOLATILE=0 APT=1 SYSTEMCTL=1 MAKE_VENV=1 CHECK=1 CONFIG=""

say() { printf 'adsb-agent install: %s\n' "$*"; }
die() { printf 'adsb-agent install: error: %s\n' "$*" >&2; exit 1; }
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit "${1:-0}"; }

while [ $# -gt 0 ]; do
    case "$1" in
        --uninstall) UNINSTALL=1 ;;
        --purge) PURGE=1 ;;
        --volatile-journal) VOLATILE=1 ;;
        --no-apt) APT=0 ;;
        --no-systemctl) SYSTEMCTL=0 ;;
        --no-venv) MAKE_VENV=0 ;;
        --no-check) CHECK=0 ;;
        --config)
            [ $# -ge 2 ] || die "--config needs a file"
            CONFIG=$2
            shift
            ;;
        -h | --help) usage 0 ;;
        *) printf 'unknown option: %s\n\n' "$1" >&2; usage 2 ;;
    esac
    shift
done

if [ -n "$DESTDIR" ]; then
    APT=0 SYSTEMCTL=0 CHECK=0 MAKE_VENV=0
    mkdir -p "$DESTDIR"
    DESTDIR=$(cd "$DESTDIR" && pwd)
    say "dry run into $DESTDIR: nothing outside it is touched"
elif [ "$(id -u)" -ne 0 ]; then
    die "run as root: sudo $0 $*"
fi
[ -z "$CONFIG" ] || [ -r "$CONFIG" ] || die "cannot read --config $CONFIG"

# systemd as PID 1 (sd_booted(3)'s test). Not in a chroot (an image being built, a
# qemu-user root) or a container: there the unit is enabled for the next boot (an
# offline symlink) and nothing is reloaded or started.
BOOTED=0
[ "$SYSTEMCTL" -eq 1 ] && [ -d /run/systemd/system ] && BOOTED=1
not_booted() {
    say "systemd is not running here (no /run/systemd/system: a chroot or a container):"
    say "  files are installed, the unit enabled for the next boot, nothing started."
    say "  After booting this system: sudo systemctl daemon-reload &&"
    say "  sudo systemctl restart adsb-agent && sudo adsb-agent check"
}

# Run a command that changes the system; skipped (and said) in a dry run.
system() {
    if [ "$SYSTEMCTL" -eq 1 ]; then
        "$@"
    else
        say "skipped: $*"
    fi
}

# Like system, for commands that need a running systemd (reload, restart, udevadm).
running() {
    if [ "$BOOTED" -eq 1 ]; then
        "$@"
    else
        say "skipped: $*"
    fi
}

# install_file SRC DEST MODE: copy into DESTDIR, saying whether anything changed.
install_file() {
    local src=$1 dest=$DESTDIR$2 mode=$3
    if [ -f "$dest" ] && cmp -s "$src" "$dest"; then
        chmod "$mode" "$dest"
        say "unchanged $2"
    else
        install -D -m "$mode" "$src" "$dest"
        say "installed $2"
    fi
}

remove() {
    local path
    for path in "$@"; do
        case $path in /?*) ;; *) die "refusing to remove '$path'" ;; esac
        if [ -e "$DESTDIR$path" ] || [ -L "$DESTDIR$path" ]; then
            rm -rf -- "$DESTDIR$path"
            say "removed $path"
        fi
    done
}

have_user() { [ -z "$DESTDIR" ] && getent passwd "$USER_NAME" >/dev/null; }

do_apt() {
    [ "$APT" -eq 1 ] || return 0
    say "installing Debian packages: ${APT_PACKAGES[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${APT_PACKAGES[@]}" >/dev/null
}

do_user() {
    install_file "$SRC/systemd/adsb-agent.sysusers" "$SYSUSERS" 0644
    [ "$SYSTEMCTL" -eq 1 ] || { say "skipped: creating user $USER_NAME"; return 0; }
    if command -v systemd-sysusers >/dev/null; then
        systemd-sysusers "$SYSUSERS"
    else
        getent group plugdev >/dev/null || groupadd --system plugdev
        getent passwd "$USER_NAME" >/dev/null ||
            useradd --system --user-group --home-dir "$STATE" --no-create-home \
                --shell /usr/sbin/nologin --comment "ADS-B edge agent" "$USER_NAME"
        usermod -a -G plugdev,dialout "$USER_NAME"
    fi
    say "user $USER_NAME: $(id "$USER_NAME")"
}

do_venv() {
    local extras=""
    [ "$MAKE_VENV" -eq 1 ] || { say "skipped: virtual environment $VENV"; return 0; }
    grep -q '^rtlsdr *=' "$SRC/pyproject.toml" && extras="[rtlsdr]"
    if [ ! -x "$DESTDIR$VENV/bin/python" ]; then
        say "creating $VENV"
        python3 -m venv --system-site-packages "$DESTDIR$VENV"
    fi
    say "installing the agent into $VENV (this takes a few minutes on a Pi)"
    # Debian's numpy satisfies the agent; should anything ask for a newer one, fail
    # at once rather than try an hour-long build that dies without a compiler.
    "$DESTDIR$VENV/bin/pip" install -q --disable-pip-version-check --only-binary numpy \
        "$SRC$extras"
    # Same version number, newer code: replace the agent itself whatever pip thinks.
    "$DESTDIR$VENV/bin/pip" install -q --disable-pip-version-check --no-deps \
        --force-reinstall "$SRC"
}

do_files() {
    local f
    install_file "$SRC/README.md" "$PREFIX/README.md" 0644
    for f in "$SRC"/firmware_notes/*.md; do
        install_file "$f" "$PREFIX/firmware_notes/$(basename "$f")" 0644
    done
    install_file "$SRC/config/agent.toml" "$PREFIX/config/agent.toml" 0644
    install_file "$SRC/config/site-example.toml" "$PREFIX/config/site-example.toml" 0644
    install_file "$SRC/systemd/adsb-agent.service" "$UNIT" 0644
    install_file "$SRC/systemd/60-adsb-agent-rtlsdr.rules" "$UDEV" 0644
    install_file "$SRC/systemd/blacklist-rtlsdr.conf" "$BLACKLIST" 0644
    if [ "$VOLATILE" -eq 1 ]; then
        install_file "$SRC/systemd/journald-volatile.conf" "$JOURNALD" 0644
    fi
    mkdir -p "$DESTDIR$(dirname "$BIN")"
    ln -sfn "$VENV/bin/adsb-agent" "$DESTDIR$BIN"
    say "linked $BIN -> $VENV/bin/adsb-agent"
}

# The configuration is the technician's: created once, never overwritten.
FIRST_CONFIG=0
do_config() {
    local cfg=$ETC/agent.toml group=root
    have_user && group=$USER_NAME
    install -d -m 0750 "$DESTDIR$ETC"
    [ -z "$DESTDIR" ] && chgrp "$group" "$DESTDIR$ETC"
    if [ -e "$DESTDIR$cfg" ]; then
        say "kept your $cfg (the annotated example is $PREFIX/config/agent.toml)"
    else
        install -m 0640 "${CONFIG:-$SRC/config/agent.toml}" "$DESTDIR$cfg"
        [ -z "$DESTDIR" ] && chgrp "$group" "$DESTDIR$cfg"
        say "installed $cfg from ${CONFIG:-config/agent.toml}: edit it (site, sources, mqtt)"
        FIRST_CONFIG=1
    fi
    # LoadCredential= needs the file; empty means no password (see README, Security).
    if [ ! -e "$DESTDIR$ETC/mqtt-password" ]; then
        install -m 0600 /dev/null "$DESTDIR$ETC/mqtt-password"
        say "created $ETC/mqtt-password (empty, mode 0600): put the broker password in it"
    fi
    install -d -m 0750 "$DESTDIR$STATE"
    have_user && chown "$USER_NAME:$USER_NAME" "$DESTDIR$STATE"
    return 0
}

# A unit that fails to start must not end the install: the self-check that follows
# is what says why. So the start is soft, and the journal's last lines are shown.
start_service() {
    if [ "$BOOTED" -eq 0 ]; then
        say "skipped: systemctl restart adsb-agent.service"
        return 0
    fi
    if systemctl restart adsb-agent.service; then
        say "started adsb-agent.service"
        return 0
    fi
    say "adsb-agent.service did not start; its last log lines:"
    journalctl -u adsb-agent.service -n 20 --no-pager 2>&1 || true
    say "see the self-check below; then: sudo systemctl restart adsb-agent"
}

do_services() {
    [ "$SYSTEMCTL" -eq 0 ] || [ "$BOOTED" -eq 1 ] || not_booted
    running systemctl daemon-reload || say "systemctl daemon-reload failed: reboot"
    if [ "$VOLATILE" -eq 1 ]; then
        running systemctl restart systemd-journald ||
            say "journald did not restart: the volatile journal applies after a reboot"
    fi
    if [ "$BOOTED" -eq 1 ] && command -v udevadm >/dev/null; then
        udevadm control --reload-rules || say "udevadm could not reload the rules: reboot"
        udevadm trigger --subsystem-match=usb --action=add || true
    fi
    if [ "$BOOTED" -eq 1 ] && [ -d /sys/module/dvb_usb_rtl28xxu ]; then
        modprobe -r dvb_usb_rtl28xxu 2>/dev/null ||
            say "the DVB driver holds the dongle: reboot to release it"
    fi
    # Works without a running systemd too (a symlink): the agent starts at next boot.
    if [ "$SYSTEMCTL" -eq 1 ] && ! command -v systemctl >/dev/null; then
        say "systemctl is missing: is systemd installed? The service is not enabled"
    else
        system systemctl enable adsb-agent.service ||
            say "could not enable adsb-agent.service: sudo systemctl enable adsb-agent"
    fi
    if [ "$FIRST_CONFIG" -eq 1 ] && [ -z "$CONFIG" ]; then
        say "not started: edit $ETC/agent.toml, then: sudo systemctl start adsb-agent"
    else
        start_service
    fi
}

do_check() {
    [ "$CHECK" -eq 1 ] && [ -x "$VENV/bin/adsb-agent" ] || return 0
    say "self-check (sudo adsb-agent check runs it again):"
    "$VENV/bin/adsb-agent" check --config "$ETC/agent.toml" ||
        say "the self-check found problems: see the FAIL lines above"
}

journal_hint() {
    [ "$VOLATILE" -eq 1 ] && return 0
    say "hint: on an SD card, keep the journal in RAM: re-run with --volatile-journal"
}

uninstall() {
    if [ "$BOOTED" -eq 1 ]; then
        systemctl disable --now adsb-agent.service 2>/dev/null || true
    elif [ "$SYSTEMCTL" -eq 1 ] && command -v systemctl >/dev/null; then
        systemctl disable adsb-agent.service 2>/dev/null || true
    else
        say "skipped: systemctl disable --now adsb-agent.service"
    fi
    remove "$UNIT" "$UDEV" "$BLACKLIST" "$SYSUSERS" "$JOURNALD" "$BIN" "$PREFIX"
    running systemctl daemon-reload || true
    if [ "$BOOTED" -eq 1 ] && command -v udevadm >/dev/null; then
        udevadm control --reload-rules || true
    fi
    if [ "$PURGE" -eq 1 ]; then
        remove "$ETC" "$STATE"
        if have_user; then
            userdel "$USER_NAME" && say "removed user $USER_NAME"
        fi
    else
        say "kept $ETC (your configuration) and $STATE (records not yet sent); --purge removes them"
    fi
}

if [ "$UNINSTALL" -eq 1 ]; then
    uninstall
    exit 0
fi
do_apt
do_user
do_venv
do_files
do_config
do_services
do_check
journal_hint
say "done. Status: adsb-agent status; logs: journalctl -u adsb-agent -f"
