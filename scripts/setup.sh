#!/usr/bin/env bash
# Creates .venv with mailtriage and its test tools; installs the Debian packages the
# tests start (Postfix, Dovecot, Prometheus, pflogsumm, rsyslog, Chromium) when run as
# root and they are missing. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

want_apt="${1:-}"
if [ "$want_apt" = "--with-daemons" ] && [ "$(id -u)" = 0 ]; then
    pkgs="postfix dovecot-core dovecot-lmtpd prometheus pflogsumm rsyslog chromium"
    missing=""
    for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
    if [ -n "$missing" ]; then
        echo "setup: installing Debian packages:$missing"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
    fi
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test]"
