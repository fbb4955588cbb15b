#!/usr/bin/env bash
# Checks a lorabridge .deb as a steward would get it: the control fields, the files and
# conffiles, the maintainer scripts, and that the packaged binary runs and accepts the packaged
# config. Every failed assertion prints one line starting with FAIL; the script exits 1 if any
# failed (it goes on after a failure, so one run shows them all). The last line counts them:
# "check-deb: N passed, M failed".
#
#     packaging/check-deb.sh target/debian/lorabridge_0.1.0-1_amd64.deb
#
# Needs dpkg-deb; uses systemd-analyze when it is installed (and says so when it is not).
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 PATH.deb" >&2
    exit 2
fi
deb=$1
if [ ! -f "$deb" ]; then
    echo "FAIL: $deb is not a file" >&2
    exit 1
fi

passes=0
failures=0
pass() {
    echo "ok:   $*"
    passes=$((passes + 1))
}
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}
# check DESCRIPTION COMMAND...: runs the command, quietly, and records the outcome.
check() {
    local what=$1
    shift
    if "$@" >/dev/null 2>&1; then pass "$what"; else fail "$what"; fi
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "Checking $deb ($(du -h "$deb" | cut -f1))"

# --- Control fields --------------------------------------------------------------------------
field() { dpkg-deb -f "$deb" "$1" 2>/dev/null || true; }
package=$(field Package)
arch=$(field Architecture)
version=$(field Version)
depends=$(field Depends)
maintainer=$(field Maintainer)
host_arch=$(dpkg --print-architecture 2>/dev/null || echo unknown)

[ "$package" = lorabridge ] && pass "Package: lorabridge" || fail "Package is '$package', not lorabridge"
if [ -z "$arch" ] || [ "$arch" = all ]; then
    fail "Architecture is '$arch', expected a machine architecture"
else
    pass "Architecture: $arch"
fi
[ -n "$version" ] && pass "Version: $version" || fail "Version is empty"
[ -n "$maintainer" ] && pass "Maintainer: $maintainer" || fail "Maintainer is empty"
if [ -z "$depends" ]; then
    fail "Depends is empty (cargo-deb's \$auto should have found libc6)"
else
    pass "Depends: $depends"
    [[ $depends == *libc6* ]] && pass "Depends names libc6" || fail "Depends does not name libc6"
    [[ $depends == *adduser* ]] && pass "Depends names adduser (the postinst uses it)" \
        || fail "Depends does not name adduser, which the postinst uses"
fi

# --- Files -----------------------------------------------------------------------------------
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|' >"$work/files"
listed() { grep -qx "$1" "$work/files"; }
for path in /usr/bin/lorabridge /etc/lorabridge/bridge.toml \
    /usr/share/doc/lorabridge/bridge.example.toml /usr/share/doc/lorabridge/README.Debian; do
    listed "$path" && pass "lists $path" || fail "does not list $path"
done
unit_path=
for candidate in /usr/lib/systemd/system/lorabridge.service /lib/systemd/system/lorabridge.service; do
    if listed "$candidate"; then unit_path=$candidate; fi
done
[ -n "$unit_path" ] && pass "lists the unit $unit_path" \
    || fail "lists no lorabridge.service under /usr/lib/systemd/system or /lib/systemd/system"
if grep -q 'multi-user.target.wants' "$work/files"; then
    fail "ships an enablement symlink: the service must not be enabled at install"
else
    pass "ships no enablement symlink"
fi

# --- Control files ---------------------------------------------------------------------------
dpkg-deb -e "$deb" "$work/control"
if [ -f "$work/control/conffiles" ] && grep -qx /etc/lorabridge/bridge.toml "$work/control/conffiles"; then
    pass "conffiles lists /etc/lorabridge/bridge.toml"
else
    fail "conffiles does not list /etc/lorabridge/bridge.toml"
fi
for script in postinst prerm postrm; do
    if [ -x "$work/control/$script" ]; then
        pass "has an executable $script"
        check "$script is valid sh" sh -n "$work/control/$script"
        if grep -q '#DEBHELPER#' "$work/control/$script"; then
            fail "$script still holds the #DEBHELPER# token"
        fi
    else
        fail "has no executable $script"
    fi
done
postinst=$work/control/postinst
if [ -f "$postinst" ]; then
    check "postinst creates the system user lorabridge with no login shell" \
        sh -c 'grep -q "adduser .*--system" "$1" && grep -q "nologin lorabridge$" "$1"' _ "$postinst"
    check "postinst adds lorabridge to dialout, gpio and spi where they exist" \
        grep -q 'for group in dialout gpio spi' "$postinst"
    check "postinst tells the next steps (lorabridge doctor, systemctl enable --now)" \
        sh -c 'grep -q "lorabridge doctor" "$1" && grep -q "systemctl enable --now lorabridge" "$1"' _ "$postinst"
    # cargo-deb's start snippets run `deb-systemd-invoke start` (or set _dh_action=start); its
    # enable snippet calls `deb-systemd-helper enable` without first asking debian-installed,
    # as the don't-enable one does (which only re-enables a unit the steward had enabled).
    if grep -Eq 'deb-systemd-invoke start|_dh_action=start' "$postinst"; then
        fail "postinst starts the service on install"
    else
        pass "postinst does not start the service on install"
    fi
    if grep -q 'deb-systemd-helper enable' "$postinst" &&
        ! grep -q 'deb-systemd-helper debian-installed' "$postinst"; then
        fail "postinst enables the service on install"
    else
        pass "postinst does not enable the service on install"
    fi
fi

# --- Contents --------------------------------------------------------------------------------
root=$work/root
dpkg-deb -x "$deb" "$root"
bin=$root/usr/bin/lorabridge
config=$root/etc/lorabridge/bridge.toml
unit=$root$unit_path

if [ "$arch" != "$host_arch" ]; then
    echo "skip: the binary is for $arch, this machine is $host_arch: not running it"
elif [ -x "$bin" ]; then
    if out=$("$bin" --version 2>&1); then
        pass "lorabridge --version: $out"
        upstream=${version%-*}
        [[ $out == *"$upstream"* ]] && pass "--version matches the package version $upstream" \
            || fail "--version says '$out', the package is $version"
    else
        fail "lorabridge --version failed: $out"
    fi
    if out=$("$bin" check-config --config "$config" 2>&1); then
        pass "check-config accepts the packaged /etc/lorabridge/bridge.toml"
        echo "$out" | sed 's/^/      /'
    else
        fail "check-config rejects the packaged /etc/lorabridge/bridge.toml:"
        echo "$out" | sed 's/^/      /'
    fi
else
    fail "the extracted /usr/bin/lorabridge is missing or not executable"
fi

if [ -f "$config" ]; then
    # Relative names would resolve under /etc/lorabridge, which the service may not write.
    for key in node_key database; do
        check "config gives $key an absolute path under /var/lib/lorabridge" \
            grep -Eq "^$key = \"/var/lib/lorabridge/" "$config"
    done
    check "config points to /usr/share/doc/lorabridge/bridge.example.toml" \
        grep -q /usr/share/doc/lorabridge/bridge.example.toml "$config"
    mode=$(dpkg-deb -c "$deb" | awk '$6 == "./etc/lorabridge/bridge.toml" {print $1}')
    [ "$mode" = "-rw-r-----" ] && pass "config is packaged with mode 0640" \
        || fail "config is packaged as '$mode', expected -rw-r----- (it may hold region_key)"
fi

if [ -f "$unit" ]; then
    for line in 'ExecStart=/usr/bin/lorabridge run --config /etc/lorabridge/bridge.toml' \
        'User=lorabridge' 'StateDirectory=lorabridge' 'RuntimeMaxSec=1d' 'Restart=always' \
        'NoNewPrivileges=yes' 'ProtectSystem=strict' 'DevicePolicy=closed' 'CapabilityBoundingSet='; do
        check "unit has $line" grep -qx "$line" "$unit"
    done
    if command -v systemd-analyze >/dev/null; then
        # verify checks that ExecStart= is executable: point it at the extracted binary.
        mkdir -p "$work/unit"
        sed "s|^ExecStart=/usr/bin/lorabridge|ExecStart=$bin|" "$unit" >"$work/unit/lorabridge.service"
        if out=$(systemd-analyze verify "$work/unit/lorabridge.service" 2>&1) && [ -z "$out" ]; then
            pass "systemd-analyze verify finds nothing to report"
        else
            fail "systemd-analyze verify reports:"
            echo "$out" | sed 's/^/      /'
        fi
        # The exposure score, for information only (systemd's view, not a pass mark).
        if score=$(systemd-analyze security --offline=true "$work/unit/lorabridge.service" 2>/dev/null | tail -n 1); then
            echo "info: systemd-analyze security: ${score#→ }"
        fi
    else
        echo "skip: systemd-analyze is not installed: the unit was not verified"
    fi
fi

if [ "$failures" -gt 0 ]; then
    echo "FAILED: $failures check(s) of $deb, listed above as FAIL" >&2
fi
# The closing line in the form CI reads as a test count.
echo "check-deb: $passes passed, $failures failed"
[ "$failures" -eq 0 ]
