#!/bin/sh
# DaemonSet: keep <HOSTPATH_ROOT>/<service>/<version>/<file> present and verified on this
# node for every line of ENTRIES_FILE (tab-separated: service version sha256 file url),
# downloading with the portal token in PORTAL_TOKEN.
# A version directory appears only once its file is complete and verified (atomic rename).
# SYNC_ONCE=1 runs one pass and exits non-zero if any entry failed.
set -eu
umask 022
PROG=binary-sync

# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"

: "${HOSTPATH_ROOT:?}" "${ENTRIES_FILE:?}"
check_token || exit 2
TAB=$(printf '\t')

sync_one() {
  check_entry "$1" "$2" "$3" "$4" "$5" || return 1
  dir="$HOSTPATH_ROOT/$1/$2"
  if [ -f "$dir/$4" ] && verify "$3" "$dir/$4" 2>/dev/null; then
    return 0
  fi
  stage="$HOSTPATH_ROOT/.staging/$1.$2.$$"
  if ! { rm -rf "$stage" && mkdir -p "$stage"; }; then
    fail "cannot create $stage"
    return 1
  fi
  if ! fetch "$5" "$stage/$4"; then
    rm -rf "$stage"
    fail "download failed for $1 $2: $5"
    return 1
  fi
  if ! verify "$3" "$stage/$4"; then
    rm -rf "$stage"
    return 1
  fi
  if ! { chmod 0555 "$stage/$4" && chmod 0755 "$stage" && mkdir -p "$HOSTPATH_ROOT/$1"; }; then
    rm -rf "$stage"
    fail "cannot prepare $dir"
    return 1
  fi
  if [ -e "$dir" ]; then
    rm -rf "$dir" || { fail "cannot replace $dir"; return 1; }
  fi
  mv "$stage" "$dir" || { rm -rf "$stage"; fail "cannot install $dir"; return 1; }
  echo "$PROG: installed $1 $2 ($3)"
}

sync_all() {
  status=0
  while IFS="$TAB" read -r service version sha256 file url; do
    case "$service" in '' | '#'*) continue ;; esac
    sync_one "$service" "$version" "$sha256" "$file" "${url:-}" || status=1
  done <"$ENTRIES_FILE"
  return "$status"
}

while :; do
  if sync_all; then result=0; else result=1; fi
  if [ "${SYNC_ONCE:-0}" = 1 ]; then
    exit "$result"
  fi
  sleep "${SYNC_INTERVAL:-60}"
done
