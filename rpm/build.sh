#!/usr/bin/env bash
# Build the imunifyemail RPM from this checkout (make rpm [TARGET=el8|el9] [RELEASE=N] [SIGN_KEY=ID]).
#
#   local  (default) for this machine's Python, built with rpmbuild here: what the development tests install.
#   el8    for EL8 (AlmaLinux, Rocky, CloudLinux, RHEL 8): Python 3.9 from the python39 package.
#   el9    for EL9 (the same, 9): Python 3.9, the system's own python3.
#          Both are built here with rpmbuild and a CPython 3.9 (make python39): cp39 manylinux wheels,
#          .pyc compiled by 3.9. On an EL build host with mock installed they are built in mock instead
#          (rpm/mock/imunifyemail-<target>.cfg); --no-mock builds here anyway.
#
# The pinned wheels (rpm/requirements.txt, rpm/build-requirements.txt) are fetched from PyPI into
# build/wheels/<target>/ the first time; later builds use them without the network. With --sign, the
# packages are signed (rpmsign --addsign) with that gpg key of the builder's keyring ($GNUPGHOME).
set -euo pipefail

usage() {
    cat <<'EOF'
usage: rpm/build.sh [--target local|el8|el9] [--release N] [--outdir DIR] [--sign KEY] [--no-mock]
  --target   local (this machine's Python; default), el8 or el9 (Python 3.9, manylinux wheels)
  --release  the RPM release number (default 1); a higher one makes an upgrade
  --outdir   where the built packages are put (default build/rpm)
  --sign     sign the packages with this gpg key (a key id, fingerprint or e-mail of $GNUPGHOME's keyring)
  --no-mock  el8/el9: build here with rpmbuild even when mock is installed
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
sign_key=""
use_mock=yes
while [ $# -gt 0 ]; do
    case "$1" in
        --target) target=${2:?--target needs a value}; shift 2 ;;
        --release) release=${2:?--release needs a value}; shift 2 ;;
        --outdir) outdir=${2:?--outdir needs a value}; shift 2 ;;
        --sign) sign_key=${2:?--sign needs a key}; shift 2 ;;
        --no-mock) use_mock=no; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done
[[ $release =~ ^[1-9][0-9]*$ ]] || die "--release must be a positive whole number, not '$release'"
build_python=${BUILD_PYTHON:-$repo/.venv/bin/python}
[ -x "$build_python" ] || die "$build_python not found: run 'make venv' first (or set BUILD_PYTHON)"
command -v rpmbuild >/dev/null || die "rpmbuild not found: run 'make deps' (Debian package rpm)"
if [ -n "$sign_key" ]; then
    command -v rpmsign >/dev/null || die "rpmsign not found: run 'make deps' (Debian package rpm)"
    command -v gpg >/dev/null || die "gpg not found: install gnupg"
    gpg --batch --list-secret-keys "$sign_key" >/dev/null 2>&1 \
        || die "no secret gpg key '$sign_key' in ${GNUPGHOME:-~/.gnupg}: nothing was built"
fi

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
                 --define "ie_python_requires $(readlink -f "$runtime_python")"
                 --define "ie_build_requires $runtime_python")
        local_defines=(--define "ie_build_python $build_python" --define "ie_compile_python $build_python")
        ;;
    el8|el9)
        pyver=3.9
        major=${target#el}
        py39=$repo/build/python3.9/bin/python3.9
        [ -x "$py39" ] || die "$py39 not found: run 'make python39' first (EL's interpreter is Python 3.9)"
        # The build's own 3.9 venv: pip for %build, and the interpreter that compiles the .pyc files.
        build39=$repo/build/venv-py39
        if [ ! -x "$build39/bin/python" ]; then
            "$py39" -m venv "$build39" || die "could not make the 3.9 build venv $build39"
        fi
        wheel_opts=(--only-binary=:all: --implementation cp --python-version 3.9 --abi cp39 --abi abi3 --abi none
                    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64
                    --platform manylinux2014_x86_64 --platform manylinux2010_x86_64
                    --platform manylinux1_x86_64 --platform any)
        # EL8: the python39 module stream's package; EL9: the system's python3 (3.9). Both have
        # /usr/bin/python3.9, which the tree's venv links to.
        if [ "$major" = 8 ]; then
            el_requires=python39 el_build_requires="python39 python39-pip"
        else
            el_requires=python3 el_build_requires="python3 python3-pip"
        fi
        defines=(--define "ie_python /usr/bin/python3.9" --define "ie_pyver 3.9"
                 --define "ie_python_requires $el_requires" --define "ie_build_requires $el_build_requires"
                 --define "dist .el$major")
        local_defines=(--define "ie_build_python $build39/bin/python" --define "ie_compile_python $build39/bin/python")
        ;;
    *) usage >&2; die "unknown target '$target' (local, el8 or el9)" ;;
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

# 3. The package: rpmbuild here, or mock on an EL build host.
common=(--define "_topdir $topdir" --define "ie_flavour $target" --define "ie_release $release")
if [ "$target" != local ] && [ "$use_mock" = yes ] && command -v mock >/dev/null; then
    rpmbuild -bs --nodeps "${common[@]}" "${defines[@]}" "$topdir/SPECS/imunifyemail.spec"
    srpm=$(find "$topdir/SRPMS" -name '*.src.rpm' | head -n 1)
    cp "$srpm" "$outdir/"
    mock -r "$repo/rpm/mock/imunifyemail-$target.cfg" --define "ie_release $release" \
        --resultdir "$work/mock" --rebuild "$srpm"
    find "$work/mock" -name '*.rpm' ! -name '*.src.rpm' -exec cp {} "$topdir/RPMS/" \;
else
    # --nodeps: this machine's packages (Debian's) are not in an rpm database.
    rpmbuild -bb --nodeps "${common[@]}" "${defines[@]}" "${local_defines[@]}" "$topdir/SPECS/imunifyemail.spec"
fi
mapfile -t built < <(find "$topdir/RPMS" -name '*.rpm')
[ "${#built[@]}" -gt 0 ] || die "rpmbuild made no package"
if [ -n "$sign_key" ]; then
    rpmsign --addsign --define "_gpg_name $sign_key" --define "__gpg $(command -v gpg)" "${built[@]}" >/dev/null \
        || die "signing with '$sign_key' failed"
fi
cp "${built[@]}" "$outdir/"
echo "built:"
for f in "${built[@]}"; do printf '  %s%s\n' "$outdir/$(basename "$f")" "${sign_key:+ (signed)}"; done
