#!/usr/bin/env bash
# Writes the SwiftPM checksum of a release's snap2pFFI.xcframework.zip into Package.swift
# (`let releaseChecksum = "…"`), so `.binaryTarget(url: releaseURL, checksum:)` resolves
# the zip the release workflow uploads. The checksum is the zip's SHA-256, what
# `swift package compute-checksum` prints (used when swift is on PATH, and compared).
#   swift/update-checksum.sh path/to/snap2pFFI.xcframework.zip
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
zip="${1:?usage: swift/update-checksum.sh snap2pFFI.xcframework.zip}"
[ -f "$zip" ] || { echo "update-checksum.sh: no file $zip" >&2; exit 1; }
sum=$( (sha256sum "$zip" 2>/dev/null || shasum -a 256 "$zip") | cut -d' ' -f1)
if command -v swift >/dev/null 2>&1; then
  spm=$(swift package compute-checksum "$zip")
  [ "$spm" = "$sum" ] || { echo "update-checksum.sh: swift says $spm, sha256 $sum" >&2; exit 1; }
fi
manifest="$here/Package.swift"
grep -q '^let releaseChecksum = "[0-9a-f]*"$' "$manifest" ||
  { echo "update-checksum.sh: no 'let releaseChecksum = \"…\"' line in $manifest" >&2; exit 1; }
sed -i.bak "s/^let releaseChecksum = \"[0-9a-f]*\"$/let releaseChecksum = \"$sum\"/" "$manifest"
rm -f "$manifest.bak"
grep -q "^let releaseChecksum = \"$sum\"$" "$manifest"
echo "Package.swift: releaseChecksum = $sum ($(grep '^let version' "$manifest"))"
