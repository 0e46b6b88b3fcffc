#!/bin/sh
# Downloads the advisory and malware data that strict.toml reads, checks that the policy loads
# with it, then switches to it in one step. pipwall-refresh.service runs it every hour and then
# reloads pipwall; without systemd, run it from cron followed by `kill -HUP <pipwall's pid>`.
#
# Environment (see pipwall.env): PIPWALL_DATA (a symbolic link this script maintains),
# PIPWALL_ADVISORIES_URL and PIPWALL_MALWARE_URL (zips of OSV records, e.g. an OSV export),
# PIPWALL_POLICY, PIPWALL (the binary; default: pipwall). Needs curl and unzip.
set -eu
umask 022

link=${PIPWALL_DATA:?set PIPWALL_DATA}
root=$(dirname "$link")
pipwall=${PIPWALL:-pipwall}
mkdir -p "$root"
if [ -e "$link" ] && [ ! -L "$link" ]; then
  echo "refresh-data: $link is not a symbolic link; move it away first" >&2
  exit 1
fi

new=$(mktemp -d "$root/.set-XXXXXXXX")
chmod 755 "$new"
done=no
trap '[ "$done" = yes ] || rm -rf "$new"' EXIT

fetch() { # fetch NAME URL
  curl --fail --silent --show-error --location --retry 3 --max-time 900 -o "$new/$1.zip" "$2"
  unzip -q "$new/$1.zip" -d "$new/$1"
  rm "$new/$1.zip"
}
fetch advisories "${PIPWALL_ADVISORIES_URL:?set PIPWALL_ADVISORIES_URL}"
fetch malware "${PIPWALL_MALWARE_URL:?set PIPWALL_MALWARE_URL}"

# The policy must load with the new data before anything uses it.
PIPWALL_DATA=$new "$pipwall" policy check "${PIPWALL_POLICY:?set PIPWALL_POLICY}"

name=$(basename "$new")
ln -s "$name" "$root/.current.tmp"
mv -T "$root/.current.tmp" "$link"
done=yes
for old in "$root"/.set-*; do
  [ "$(basename "$old")" = "$name" ] || rm -rf "$old"
done
echo "refresh-data: $link now points at $name"
