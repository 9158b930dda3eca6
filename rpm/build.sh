#!/usr/bin/env bash
# Build the imunifyemail RPM from this checkout (make rpm [TARGET=el8] [RELEASE=N]).
#
#   local  (default) for this machine's Python, built with rpmbuild here: what the tests install.
#   el8    for EL8's Python 3.9 (manylinux wheels): a source RPM, rebuilt in mock when mock is
#          installed (an EL8 build host, rpm/mock/imunifyemail-el8.cfg); see rpm/README.md.
#
# The pinned wheels (rpm/requirements.txt, rpm/build-requirements.txt) are fetched from PyPI into
# build/wheels/<target>/ the first time; later builds use them without the network.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: rpm/build.sh [--target local|el8] [--release N] [--outdir DIR]
  --target   local (this machine's Python; default) or el8 (Python 3.9, manylinux wheels)
  --release  the RPM release number (default 1); a higher one makes an upgrade
  --outdir   where the built packages are put (default build/rpm)
EOF
}

die() {
    echo "rpm/build.sh: $*" >&2
    exit 1
}

target=local
release=1
repo=$(cd "$(dirname "$0")/.." && pwd)
outdir=$repo/build/rpm
while [ $# -gt 0 ]; do
    case "$1" in
        --target) target=${2:?--target needs a value}; shift 2 ;;
        --release) release=${2:?--release needs a value}; shift 2 ;;
        --outdir) outdir=${2:?--outdir needs a value}; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done
[[ $release =~ ^[1-9][0-9]*$ ]] || die "--release must be a positive whole number, not '$release'"
build_python=${BUILD_PYTHON:-$repo/.venv/bin/python}
[ -x "$build_python" ] || die "$build_python not found: run 'make venv' first (or set BUILD_PYTHON)"
command -v rpmbuild >/dev/null || die "rpmbuild not found: run 'make deps' (Debian package rpm)"

cd "$repo"
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml)
[ -n "$version" ] || die "no version in pyproject.toml"

case "$target" in
    local)
        runtime_python=${PYTHON:-/usr/bin/python3}
        pyver=$("$runtime_python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
        [ "$("$build_python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" = "$pyver" ] \
            || die "$build_python is not Python $pyver like $runtime_python: recreate the venv (make clean venv)"
        wheel_opts=(--only-binary=:all:)
        defines=(--define "ie_python $runtime_python" --define "ie_pyver $pyver"
                 --define "ie_build_python $build_python"
                 --define "ie_python_requires $(readlink -f "$runtime_python")"
                 --define "ie_build_requires $runtime_python")
        ;;
    el8)
        pyver=3.9
        wheel_opts=(--only-binary=:all: --implementation cp --python-version 3.9 --abi cp39 --abi abi3 --abi none
                    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64
                    --platform manylinux2014_x86_64 --platform manylinux2010_x86_64
                    --platform manylinux1_x86_64 --platform any)
        defines=()   # the spec's defaults are EL8's
        ;;
    *) usage >&2; die "unknown target '$target' (local or el8)" ;;
esac

work=$repo/build/rpm-$target
topdir=$work/rpmbuild
wheelhouse=$repo/build/wheels/$target
rm -rf "$work"
mkdir -p "$topdir"/{SOURCES,SPECS,BUILD,RPMS,SRPMS} "$wheelhouse" "$work/stage/wheels" "$outdir"

# 1. The source: every file git tracks or would track (a clean clone's files), under name-version/.
git ls-files -z --cached --others --exclude-standard \
    | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
    | tar --null -T - --transform "s,^,imunifyemail-$version/,S" \
        -czf "$topdir/SOURCES/imunifyemail-$version.tar.gz"

# 2. The wheels: from the wheelhouse when it has them all, else fetched from PyPI once. pip judges
# the lock's markers by the Python running it, so they are resolved here for the target's Python.
"$build_python" - "$pyver" rpm/requirements.txt rpm/build-requirements.txt >"$work/requirements.txt" <<'PY'
import sys
from packaging.requirements import Requirement
target = {"python_version": sys.argv[1], "python_full_version": sys.argv[1] + ".0"}
for name in sys.argv[2:]:
    for line in open(name):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate(target):
            print(f"{req.name}{req.specifier}")
PY
requirements=(-r "$work/requirements.txt")
if "$build_python" -m pip download -q --disable-pip-version-check --no-index --find-links "$wheelhouse" \
        -d "$work/stage/wheels" "${wheel_opts[@]}" "${requirements[@]}" 2>"$work/offline.log"; then
    echo "wheels: all pinned wheels found in $wheelhouse (no network used)"
else
    echo "wheels: fetching the pinned wheels for $target into $wheelhouse"
    "$build_python" -m pip download -q --disable-pip-version-check -d "$wheelhouse" "${wheel_opts[@]}" \
        "${requirements[@]}" || die "could not fetch the wheels: PyPI must be reachable for the first build"
    "$build_python" -m pip download -q --disable-pip-version-check --no-index --find-links "$wheelhouse" \
        -d "$work/stage/wheels" "${wheel_opts[@]}" "${requirements[@]}"
fi
tar -C "$work/stage" -czf "$topdir/SOURCES/imunifyemail-wheels-$version-$target.tar.gz" wheels
cp rpm/imunifyemail.spec "$topdir/SPECS/"

# 3. The package.
common=(--define "_topdir $topdir" --define "ie_flavour $target" --define "ie_release $release")
if [ "$target" = local ]; then
    # --nodeps: this machine's packages (Debian's) are not in an rpm database.
    rpmbuild -bb --nodeps "${common[@]}" "${defines[@]}" "$topdir/SPECS/imunifyemail.spec"
    find "$topdir/RPMS" -name '*.rpm' -exec cp {} "$outdir/" \;
else
    rpmbuild -bs --nodeps "${common[@]}" "$topdir/SPECS/imunifyemail.spec"
    srpm=$(find "$topdir/SRPMS" -name '*.src.rpm' | head -n 1)
    cp "$srpm" "$outdir/"
    if command -v mock >/dev/null; then
        mock -r "$repo/rpm/mock/imunifyemail-el8.cfg" --define "ie_release $release" \
            --resultdir "$outdir" --rebuild "$srpm"
    else
        echo "el8: source RPM $outdir/$(basename "$srpm") is ready; mock is not installed here, so build the"
        echo "     binary RPM on an EL8 build host: mock -r rpm/mock/imunifyemail-el8.cfg --rebuild THAT.src.rpm"
    fi
fi
echo "built:"
find "$outdir" -maxdepth 1 -name "imunifyemail-$version-$release*.rpm" -newer "$topdir/SPECS/imunifyemail.spec" \
    -printf '  %p\n'
