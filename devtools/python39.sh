#!/usr/bin/env bash
# A CPython 3.9 that every user may run, standing in for EL8's python39 and EL9's python3 (make python39).
#
# The product's RPMs for EL8/EL9 run on 3.9; the tests run the suite and the installed package on it.
# The machine's 3.9 (pyenv's, under /root: other users cannot read it, and it finds its libpython
# through an absolute RUNPATH) is copied to build/python3.9 with its RUNPATH made relative
# ($ORIGIN/../lib), so the copy can also be placed at EL's paths inside a scratch system (/usr/bin,
# /usr/lib). Its test suite and the sandbox's own .pth files are left out.
#
# Which 3.9: $PYTHON39 when set, else /usr/bin/python3.9, else the newest ~/.pyenv/versions/3.9.*.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
dest=$repo/build/python3.9

die() {
    echo "devtools/python39.sh: $*" >&2
    exit 1
}

source_python=${PYTHON39:-}
if [ -z "$source_python" ]; then
    for candidate in /usr/bin/python3.9 $(ls -d "$HOME"/.pyenv/versions/3.9.*/bin/python3.9 2>/dev/null | sort -V -r); do
        if [ -x "$candidate" ]; then source_python=$candidate; break; fi
    done
fi
[ -n "$source_python" ] || die "no CPython 3.9 found (set PYTHON39=/path/to/python3.9, or install one with pyenv)"
version=$("$source_python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')
[[ $version == 3.9.* ]] || die "$source_python is Python $version, not 3.9"

stamp="$source_python $version (with its .pyc)"
if [ -x "$dest/bin/python3.9" ] && [ "$(cat "$dest/.source" 2>/dev/null)" = "$stamp" ]; then
    exit 0   # made already from the same interpreter
fi
command -v patchelf >/dev/null || die "patchelf not found: run 'make deps' (Debian package patchelf)"

prefix=$("$source_python" -c 'import sys; print(sys.base_prefix)')
libpython=$("$source_python" -c 'import sysconfig; print(sysconfig.get_config_var("INSTSONAME") or "")')
rm -rf "$dest.new"
mkdir -p "$dest.new/bin" "$dest.new/lib"
cp -p "$prefix/bin/python3.9" "$dest.new/bin/"
ln -s python3.9 "$dest.new/bin/python3"
if [ -n "$libpython" ] && [ -e "$prefix/lib/$libpython" ]; then
    cp -p "$prefix/lib/$libpython" "$dest.new/lib/"
fi
# The compiled standard library comes too, as EL ships it: nothing is written into it at run time.
tar -C "$prefix/lib" --exclude=python3.9/test --exclude='*.pth' \
    --exclude='python3.9/site-packages/*' -cf - python3.9 | tar -C "$dest.new/lib" -xf -
mkdir -p "$dest.new/lib/python3.9/site-packages"
if readelf -d "$dest.new/bin/python3.9" | grep -q 'R\(UN\)\?PATH'; then
    patchelf --set-rpath '$ORIGIN/../lib' "$dest.new/bin/python3.9"
fi
chmod -R a+rX "$dest.new"
"$dest.new/bin/python3.9" -c 'import ssl, sqlite3, ctypes, venv, ensurepip' \
    || die "the copy of $source_python cannot import its own standard library"
echo "$stamp" > "$dest.new/.source"
rm -rf "$dest"
mv "$dest.new" "$dest"
echo "python39: $dest/bin/python3.9 (Python $version, from $source_python)"
