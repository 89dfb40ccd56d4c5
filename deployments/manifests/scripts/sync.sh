#!/bin/sh
# DaemonSet: keep <HOSTPATH_ROOT>/<service>/<version>/<file> present and verified on this
# node for every line of ENTRIES_FILE (tab-separated: service version sha256 file url),
# downloading with the portal token in PORTAL_TOKEN.
# A version directory appears only once its file is complete and verified (atomic rename).
# Each service and version directory the script creates holds a .portal-sync marker; it
# replaces a version directory only when the marker is there, so nothing it did not create
# is deleted (a service "lib", version "kubelet" under a badly chosen root is skipped).
# SYNC_ONCE=1 runs one pass and exits non-zero if any entry failed.
set -eu
umask 022
PROG=binary-sync

# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"

: "${HOSTPATH_ROOT:?}" "${ENTRIES_FILE:?}"
check_token || exit 2
TAB=$(printf '\t')
MARKER=.portal-sync

# mark DIR: record that binary-sync created DIR (and may replace it).
mark() {
  echo "created by binary-sync; replaced when its binary changes" >"$1/$MARKER"
}

# ours DIR: whether DIR is a real directory binary-sync created (not a link, has the marker).
ours() {
  [ -d "$1" ] && [ ! -L "$1" ] && [ -f "$1/$MARKER" ]
}

sync_one() {
  check_entry "$1" "$2" "$3" "$4" "$5" || return 1
  dir="$HOSTPATH_ROOT/$1/$2"
  if [ -f "$dir/$4" ] && verify "$3" "$dir/$4" 2>/dev/null; then
    return 0
  fi
  if { [ -e "$dir" ] || [ -L "$dir" ]; } && ! ours "$dir"; then
    fail "skipping $1 $2: $dir exists but binary-sync did not create it (no $MARKER);" \
      "it is left alone. Move it away if it is a stale copy, or choose another hostpath_root"
    return 1
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
  if [ ! -d "$HOSTPATH_ROOT/$1" ] && ! { mkdir "$HOSTPATH_ROOT/$1" && mark "$HOSTPATH_ROOT/$1"; }
  then
    rm -rf "$stage"
    fail "cannot create $HOSTPATH_ROOT/$1"
    return 1
  fi
  if ! { chmod 0555 "$stage/$4" && mark "$stage" && chmod 0755 "$stage"; }; then
    rm -rf "$stage"
    fail "cannot prepare $dir"
    return 1
  fi
  if ours "$dir"; then
    rm -rf "$dir" || { rm -rf "$stage"; fail "cannot replace $dir"; return 1; }
  elif [ -e "$dir" ] || [ -L "$dir" ]; then
    rm -rf "$stage"
    fail "skipping $1 $2: $dir appeared during the download and binary-sync did not create it"
    return 1
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
