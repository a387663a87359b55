#!/usr/bin/env bash
# Vendor the platform's front-end libraries into src/camcensus/web/static/vendor/.
#
# Installs the exact versions pinned in package-lock.json (npm ci, no install scripts) into a
# temporary folder, then copies only the files the pages load plus each package's licence:
#
#   vendor/three/                          three.module.min.js, three.core.min.js, LICENSE
#   vendor/photo-sphere-viewer-core/       index.module.js, index.css, LICENSE
#   vendor/photo-sphere-viewer-markers-plugin/  index.module.js, index.css, LICENSE
#   vendor/maplibre-gl/                    maplibre-gl.mjs, maplibre-gl-worker.mjs,
#                                          maplibre-gl.css, LICENSE.txt
#
# Photo Sphere Viewer's ES modules import the bare names "three" and
# "@photo-sphere-viewer/core". Browsers resolve bare names only through an import map, which
# would be an inline script (the Content-Security-Policy forbids inline scripts), so this script
# rewrites those two import specifiers to relative paths and drops the source-map comments
# (the maps are not copied). scripts/harden_vendor.py then removes every HTML-parsing sink
# (innerHTML and the like: strings become text nodes, the libraries' own SVG icons go through
# the XML parser) and fails if one is left. Nothing else is changed. A VERSIONS
# file records what was copied. The result is committed; the app serves it (never a CDN).
#
# Rerunnable: the vendor folder is replaced as a whole. Needs node and npm and the registry.
# Usage: scripts/vendor-frontend.sh   (from anywhere; it works from the repository root)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="$root/src/camcensus/web/static/vendor"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cp "$root/package.json" "$root/package-lock.json" "$work/"
(cd "$work" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
nm="$work/node_modules"

rm -rf "$dest.tmp"
mkdir -p "$dest.tmp"

copy() {  # copy <package dir> <dest name> <files...>
    local pkg="$1" name="$2"
    shift 2
    mkdir -p "$dest.tmp/$name"
    for f in "$@"; do
        cp "$nm/$pkg/$f" "$dest.tmp/$name/$(basename "$f")"
    done
}

copy three three build/three.module.min.js build/three.core.min.js LICENSE
copy @photo-sphere-viewer/core photo-sphere-viewer-core index.module.js index.css LICENSE
copy @photo-sphere-viewer/markers-plugin photo-sphere-viewer-markers-plugin \
    index.module.js index.css LICENSE
copy maplibre-gl maplibre-gl dist/maplibre-gl.mjs dist/maplibre-gl-worker.mjs \
    dist/maplibre-gl.css LICENSE.txt

# Bare import specifiers -> relative paths (see the header).
three='"../three/three.module.min.js"'
core='"../photo-sphere-viewer-core/index.module.js"'
for f in "$dest.tmp"/photo-sphere-viewer-*/index.module.js; do
    sed -i -e "s#from \"three\"#from $three#g" \
        -e "s#from \"@photo-sphere-viewer/core\"#from $core#g" "$f"
    if grep -qE "from \"(three|@photo-sphere-viewer/core)\"" "$f"; then
        echo "vendor-frontend.sh: a bare import is left in $f" >&2
        exit 1
    fi
done

{
    echo "# Copied by scripts/vendor-frontend.sh from package-lock.json; do not edit."
    for pkg in three @photo-sphere-viewer/core @photo-sphere-viewer/markers-plugin maplibre-gl; do
        node -e 'const p=require(process.argv[1]);console.log(p.name+" "+p.version+" "+p.license)' \
            "$nm/$pkg/package.json"
    done
} > "$dest.tmp/VERSIONS"

# The source maps are not copied: drop the comments that point at them.
find "$dest.tmp" -type f \( -name '*.js' -o -name '*.mjs' -o -name '*.css' \) \
    -exec sed -i -E '\@^(//|/\*)# sourceMappingURL=@d' {} +

python3 "$root/scripts/harden_vendor.py" "$dest.tmp"

rm -rf "$dest"
mv "$dest.tmp" "$dest"
echo "vendored into $dest:"
(cd "$dest" && find . -type f | sort)
