#!/usr/bin/env bash
# Install the Debian packages that the tests need and the machine lacks:
#   nginx     the split-plane tests start their own nginx in front of both doors;
#   chromium  the browser tests drive Debian's Chromium through Playwright (never
#             `playwright install`: no browser download);
#   curl      the browser tests publish from outside the page with it.
# Idempotent: installs only what is missing, runs `apt-get update` only when apt knows no
# candidate for a package (or an install fails on stale lists). Needs root to install.
# nginx is never left running or enabled as a system service: tests run their own.
set -euo pipefail

packages=(nginx chromium fonts-liberation curl wrk)

installed() {
  [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]
}

missing=()
for package in "${packages[@]}"; do
  installed "$package" || missing+=("$package")
done
if [[ ${#missing[@]} -eq 0 ]]; then exit 0; fi

if [[ $(id -u) -ne 0 ]]; then
  echo "system-packages: missing Debian packages: ${missing[*]}" >&2
  echo "system-packages: run this script as root, or: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt=(apt-get -q -o DPkg::Lock::Timeout=600)

has_candidate() {
  local candidate
  candidate=$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}')
  [[ -n "$candidate" && "$candidate" != "(none)" ]]
}

updated=""
for package in "${missing[@]}"; do
  if ! has_candidate "$package"; then
    echo "system-packages: apt-get update (no candidate for $package)" >&2
    "${apt[@]}" update -qq
    updated=1
    break
  fi
done

# Keep the package's maintainer scripts from starting nginx as a service, unless the
# machine already has a policy of its own (containers usually do).
own_policy=""
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  printf '#!/bin/sh\n# written by tandem scripts/system-packages.sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  own_policy=1
fi
cleanup() { if [[ -n "$own_policy" ]]; then rm -f /usr/sbin/policy-rc.d; fi; }
trap cleanup EXIT

echo "system-packages: installing ${missing[*]}" >&2
install=("${apt[@]}" install -y -qq --no-install-recommends "${missing[@]}")
if ! "${install[@]}" >/dev/null; then
  if [[ -n "$updated" ]]; then exit 1; fi
  echo "system-packages: install failed; apt-get update and one more try" >&2
  "${apt[@]}" update -qq
  "${install[@]}" >/dev/null
fi

if [[ " ${missing[*]} " == *" nginx "* ]]; then
  # Not a service here: tests run `nginx -p <tmpdir> -c <conf>` in the foreground.
  if [[ -d /run/systemd/system ]]; then
    systemctl disable --now nginx.service >/dev/null 2>&1 || true
  else
    systemctl disable nginx.service >/dev/null 2>&1 || true
    update-rc.d nginx disable >/dev/null 2>&1 || true
  fi
  # If a policy let the package start it anyway, stop that instance (Debian's pid file).
  if [[ -s /run/nginx.pid ]] && kill -0 "$(cat /run/nginx.pid)" 2>/dev/null; then
    /usr/sbin/nginx -s quit || true
  fi
fi
