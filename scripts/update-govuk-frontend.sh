#!/usr/bin/env bash
# Replace the vendored GOV.UK Frontend with the compiled files of one pinned npm release.
#
#   scripts/update-govuk-frontend.sh            # the version in VERSION (re-vendor it)
#   scripts/update-govuk-frontend.sh 6.3.0      # move to another version
#
# The console serves these files as they are: nothing is built when Forewarn is installed.
# Keep the version in step with the Jinja macros (govuk-frontend-jinja 4.1.x ports 6.3.0),
# then run the console tests, whose axe-core checks catch markup the two disagree on.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
target="$root/sidecar/console/static/govuk-frontend"
version="${1:-$(cat "$target/VERSION")}"
if [[ ! "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
  echo "usage: $0 [MAJOR.MINOR.PATCH]" >&2
  exit 2
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "govuk-frontend@$version" >/dev/null)
tar -xzf "$work/govuk-frontend-$version.tgz" -C "$work"
dist="$work/package/dist/govuk"

rm -rf "$target"
mkdir -p "$target/assets"
cp "$dist/govuk-frontend.min.css" "$dist/govuk-frontend.min.js" "$target/"
cp -R "$dist/assets/images" "$target/assets/"
cp "$dist/assets/manifest.json" "$target/assets/"
# package.json names the release and its licence (MIT); the package ships no licence file.
cp "$work/package/package.json" "$target/"
# GDS Transport is "customised for exclusive use on gov.uk" (the licence comment in the CSS),
# and a council's console is not on GOV.UK: leave the font files out and drop the rules that
# load them, so the stylesheet's own fallback, Arial, is used as the Design System advises.
python3 - "$target/govuk-frontend.min.css" <<'PY'
import re
import sys
from pathlib import Path

path = Path(sys.argv[1])
css = path.read_text(encoding="utf-8")
stripped, count = re.subn(r"@font-face\{font-family:GDS Transport;[^}]*\}", "", css)
if count == 0:
    sys.exit("no GDS Transport @font-face rule found: check the stylesheet by hand")
path.write_text(stripped, encoding="utf-8")
PY
echo "$version" > "$target/VERSION"
echo "vendored govuk-frontend $version into ${target#"$root"/}"
