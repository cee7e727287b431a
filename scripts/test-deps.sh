#!/usr/bin/env bash
# Installs what `make test` needs on a fresh Debian machine with Rust, PostgreSQL and root (the
# machine CI uses), and does nothing for what is already there: libpq for diesel, diesel_cli
# for the schema drift check, systemd-analyze for the unit checks, Node.js and npm for the web
# UI and the client and browser tests, Chromium for the browser tests, and a MariaDB server
# that root may use over TCP without a password for the collector tests, curl and Python's
# venv for the schemathesis run, and promtool (Debian's prometheus package, its server not
# started) for the alert rules' tests. Safe to run again.
set -euo pipefail

DIESEL_CLI_VERSION=2.3.14
apt_updated=false
apt_install() {
    if ! $apt_updated; then
        apt-get update -qq
        apt_updated=true
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
installed=()

# PostgreSQL: the machine runs it; start the local cluster again if it stopped.
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
    installed+=("started PostgreSQL")
fi

packages=()
dpkg -s libpq-dev >/dev/null 2>&1 || packages+=(libpq-dev)
command -v systemd-analyze >/dev/null 2>&1 || packages+=(systemd)
command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)
[ -x /usr/bin/chromium ] || packages+=(chromium)
command -v mysqladmin >/dev/null 2>&1 || packages+=(mariadb-server mariadb-client)
command -v curl >/dev/null 2>&1 || packages+=(curl)
# schemathesis (make schemathesis) runs from a virtual environment of its own.
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || packages+=(python3-venv)
if [ ${#packages[@]} -gt 0 ]; then
    apt_install "${packages[@]}"
    installed+=("${packages[@]}")
fi

# promtool comes with the Prometheus server, which must not start here: while it installs,
# invoke-rc.d is told that no service may start (unless the machine says so already).
if ! command -v promtool >/dev/null 2>&1; then
    policy=/usr/sbin/policy-rc.d
    blocked_here=false
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        blocked_here=true
    fi
    apt_install --no-install-recommends prometheus
    if $blocked_here; then rm -f "$policy"; fi
    installed+=(promtool)
fi

# diesel_cli, in cargo's bin directory (on PATH for cargo users; called by path otherwise).
cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
if ! command -v diesel >/dev/null 2>&1 && [ ! -x "$cargo_bin/diesel" ]; then
    cargo install diesel_cli --version "$DIESEL_CLI_VERSION" --locked --no-default-features \
        --features postgres --quiet
    installed+=("diesel_cli $DIESEL_CLI_VERSION")
fi

# MariaDB: running, and root allowed over TCP from 127.0.0.1 without a password (a fresh
# Debian server lets root in through the socket only). CAPSTATS_TEST_MYSQL_URL overrides it.
if ! mysqladmin --protocol=tcp -h 127.0.0.1 -u root ping >/dev/null 2>&1; then
    if ! mysqladmin ping >/dev/null 2>&1; then
        (service mariadb start || /etc/init.d/mariadb start || (mysqld_safe >/dev/null 2>&1 &)) \
            >/dev/null 2>&1 || true
        for _ in $(seq 1 30); do mysqladmin ping >/dev/null 2>&1 && break; sleep 1; done
    fi
    mysql -u root -e "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
                      GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;"
    installed+=("MariaDB root over TCP")
fi

if [ ${#installed[@]} -eq 0 ]; then
    echo "test dependencies: all present"
else
    echo "test dependencies: set up ${installed[*]}"
fi
