#!/usr/bin/env bash
# Rebuilds web/static/vendor/room/ from the locked npm packages: one ES module
# with dwv and its dependencies, dwv's decoder workers beside it, and the
# licences. Run from anywhere: make web-vendor-room. Needs Node.js and npm
# only here, never at run time (the server embeds the output).
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --ignore-scripts
out=../static/vendor/room
rm -rf "$out"
mkdir -p "$out/assets/workers"
node_modules/.bin/esbuild entry.js --bundle --format=esm --minify --legal-comments=none \
  --log-level=warning --outfile="$out/dwv.bundle.js"
cp node_modules/dwv/dist/assets/workers/*.min.js "$out/assets/workers/"
{
  echo "Bundled by web/room-vendor/build.sh from the npm packages locked in web/room-vendor/package-lock.json."
  for p in dwv konva jszip magic-wand-tool pako; do
    v=$(node -p "require('./node_modules/$p/package.json').version")
    l=$(node -p "require('./node_modules/$p/package.json').license")
    echo; echo "== $p $v ($l) =="
    for f in node_modules/$p/LICENSE* node_modules/$p/license* node_modules/$p/LICENCE*; do
      if [ -f "$f" ]; then cat "$f"; fi
    done
  done
} > "$out/LICENSES.txt"
