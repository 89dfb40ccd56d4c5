#!/bin/sh
# Init container: download the release's binary into the shared emptyDir, verify it, and
# make it executable. Inputs: BINARY_URL BINARY_SHA256 BINARY_FILENAME DEST_DIR PORTAL_TOKEN.
set -eu
umask 022
PROG=binary-fetch

# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"

: "${BINARY_URL:?}" "${BINARY_SHA256:?}" "${BINARY_FILENAME:?}" "${DEST_DIR:?}"
check_token || exit 2
check_entry fetch current "$BINARY_SHA256" "$BINARY_FILENAME" "$BINARY_URL" || exit 2
part="$DEST_DIR/.$BINARY_FILENAME.part"
rm -f "$part"
if ! fetch "$BINARY_URL" "$part"; then
  rm -f "$part"
  fail "download failed: $BINARY_URL"
  exit 1
fi
if ! verify "$BINARY_SHA256" "$part"; then
  rm -f "$part"
  exit 1
fi
chmod 0555 "$part"
mv -f "$part" "$DEST_DIR/$BINARY_FILENAME"
echo "$PROG: $BINARY_FILENAME verified (sha256 $BINARY_SHA256)"
