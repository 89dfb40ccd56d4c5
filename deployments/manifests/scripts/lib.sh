# shellcheck shell=sh
# Functions shared by fetch.sh and sync.sh (POSIX sh); they expect PROG to be set.
# Not run on its own: when deployments/manifests/scripts/__init__.py loads a script, it puts
# this file, less this header (up to the first empty line), in place of the two lines that
# source it, so each rendered script is one self-contained file.

fail() {
  echo "$PROG: $*" >&2
  return 1
}

# check_entry SERVICE VERSION SHA256 FILENAME URL: refuse anything that could escape the
# target directory or reach a non-HTTP URL, whatever the renderer let through.
check_entry() {
  case "$1" in '' | . | .. | */* | -* | .*) fail "refusing service name: $1"; return 1 ;; esac
  case "$2" in '' | . | .. | */* | -* | .*) fail "refusing version: $2"; return 1 ;; esac
  case "$4" in '' | . | .. | */* | -* | .*) fail "refusing file name: $4"; return 1 ;; esac
  case "$3" in *[!0-9a-f]* | '') fail "refusing sha256: $3"; return 1 ;; esac
  [ "${#3}" -eq 64 ] || { fail "refusing sha256 (not 64 hex digits): $3"; return 1; }
  case "$5" in http://* | https://*) ;; *) fail "refusing URL: $5"; return 1 ;; esac
}

# check_token: PORTAL_TOKEN (from the fetch-token Secret) is set and fits in one header.
check_token() {
  if [ -z "${PORTAL_TOKEN:-}" ]; then
    fail "PORTAL_TOKEN is empty: create the fetch-token Secret (key 'token') in this namespace;" \
      "the portal's environment page shows the kubectl command"
    return 1
  fi
  case "$PORTAL_TOKEN" in
    *[!A-Za-z0-9._~+/=-]*)
      fail "PORTAL_TOKEN holds characters a bearer token cannot contain"
      return 1 ;;
  esac
}

# fetch URL FILE: download with curl, or wget when the image has no curl, sending the
# portal token as "Authorization: Bearer" (curl reads it from stdin, not the command line).
fetch() {
  if command -v curl >/dev/null 2>&1; then
    code=$(printf 'header = "Authorization: Bearer %s"\n' "$PORTAL_TOKEN" | curl --config - \
      --fail --silent --show-error --location --retry 3 --connect-timeout 10 \
      --max-time "${FETCH_TIMEOUT:-900}" --output "$2" --write-out '%{http_code}' \
      --url "$1") && return 0
    refused "$1" "$code"
  elif command -v wget >/dev/null 2>&1; then
    wget -q -T 60 --header="Authorization: Bearer $PORTAL_TOKEN" -O "$2" -- "$1" </dev/null \
      && return 0
    wget_status=$?
    if [ "$wget_status" -eq 6 ]; then
      refused "$1" 401
    else
      fail "wget failed (exit $wget_status) for $1"
    fi
  else
    fail "neither curl nor wget is available in this image"
  fi
}

# refused URL HTTP_STATUS: explain a refused download.
refused() {
  case "$2" in
    401 | 403)
      fail "the portal refused PORTAL_TOKEN (HTTP $2) for $1: check the fetch-token Secret;" \
        "its token must be live and have the binaries:read scope" ;;
    000 | '') fail "no HTTP response from $1" ;;
    *) fail "HTTP $2 from $1" ;;
  esac
}

# verify SHA256 FILE: sha256sum -c against the expected digest.
verify() {
  if printf '%s  %s\n' "$1" "$2" | sha256sum -c - >/dev/null 2>&1; then
    return 0
  fi
  actual=$(sha256sum "$2" 2>/dev/null | cut -d ' ' -f 1)
  fail "sha256 mismatch for $2: expected $1, got ${actual:-nothing}"
}
