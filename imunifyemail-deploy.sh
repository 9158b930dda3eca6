#!/usr/bin/env bash
# Install (or remove) Imunify Email on a cPanel & WHM server:
#
#   bash imunifyemail-deploy.sh                       install: checks, package repository, yum install
#   bash imunifyemail-deploy.sh --uninstall           yum autoremove imunifyemail (the quarantine is kept)
#   bash imunifyemail-deploy.sh --uninstall --purge   ... and delete the quarantine too
#
# Supported: AlmaLinux 8/9, Rocky Linux 8/9, CloudLinux 8/9 or RHEL 8/9 with cPanel & WHM (EL7 and
# CentOS 8 are refused, saying why and where to go); at least 512 MB of memory (refused below); 20 GB
# free on the disk of /var (a warning below: the quarantine needs room, 100 MB per account by default).
# Running it again changes nothing. Every refusal says what to do, and comes before any change.
#
# IMUNIFYEMAIL_REPO_URL overrides the package repository (a mirror). IMUNIFYEMAIL_DEPLOY_ROOT makes
# every system path it reads or writes relative to another root (tests); it changes no check.
set -euo pipefail

readonly PACKAGE=imunifyemail
readonly MIN_MEMORY_MB=512
readonly MIN_DISK_GB=20
# What check_os accepts, as usage, every refusal and README's install section name it.
readonly SUPPORTED_SYSTEMS="AlmaLinux 8/9, Rocky Linux 8/9, CloudLinux 8/9 or RHEL 8/9"
readonly REPO_URL=${IMUNIFYEMAIL_REPO_URL:-https://repo.imunify360.cloudlinux.com/defence360/imunifyemail/el/\$releasever/\$basearch/}
readonly ROOT=${IMUNIFYEMAIL_DEPLOY_ROOT:-}
readonly OS_RELEASE=$ROOT/etc/os-release
readonly MEMINFO=$ROOT/proc/meminfo
readonly CPANEL=$ROOT/usr/local/cpanel/cpanel
readonly REPO_FILE=$ROOT/etc/yum.repos.d/imunifyemail.repo
readonly STATE_DIR=$ROOT/var/imunifyemail

say() { printf 'imunifyemail-deploy: %s\n' "$*"; }
refuse() {
    printf 'imunifyemail-deploy: %s\n' "$*" >&2
    exit 1
}

usage() {
    cat <<EOF
Usage: bash imunifyemail-deploy.sh [--uninstall [--purge]] [--help]

Installs Imunify Email on this cPanel & WHM server: checks the system, adds the Imunify Email
package repository (/etc/yum.repos.d/imunifyemail.repo) and runs \`yum install imunifyemail\`. The
package registers the WHM and cPanel plugins and the account hooks, adds the filter to Exim and
starts the services. Running it again changes nothing.

  --uninstall   remove Imunify Email (\`yum autoremove imunifyemail\`) and its repository file;
                the quarantine (/var/imunifyemail/quarantine) is kept
  --purge       with --uninstall: delete the quarantine as well
  --help        this text

Requirements: $SUPPORTED_SYSTEMS with cPanel & WHM,
run as root, $MIN_MEMORY_MB MB of memory, $MIN_DISK_GB GB free on the disk of /var.
EOF
}

# -- checks -----------------------------------------------------------------------------

check_root() {
    [ "$(id -u)" -eq 0 ] || refuse "must be run as root (found user $(id -un)): run it again with sudo or as root"
}

os_field() {
    sed -n "s/^$1=//p" "$OS_RELEASE" | head -n 1 | tr -d '"'"'"
}

# EL7 by its family, not by the major alone (Debian 7 is not EL7).
is_el_family() {
    local word
    for word in "$@"; do
        case "$word" in
            rhel | centos | cloudlinux | ol | scientific) return 0 ;;
        esac
    done
    return 1
}

check_os() {
    [ -r "$OS_RELEASE" ] || refuse "cannot read $OS_RELEASE to tell which system this is: Imunify Email \
supports $SUPPORTED_SYSTEMS with cPanel & WHM; nothing was changed"
    local id id_like version major name system
    id=$(os_field ID)
    id_like=$(os_field ID_LIKE)
    version=$(os_field VERSION_ID)
    name=$(os_field PRETTY_NAME)
    major=${version%%.*}
    system="this system is ${name:-unknown} (ID=${id:-none}, VERSION_ID=${version:-none})"
    case "$id:$major" in
        almalinux:8 | almalinux:9 | rocky:8 | rocky:9 | cloudlinux:8 | cloudlinux:9 | rhel:8 | rhel:9)
            say "system: ${name:-$id $version} (supported)"
            return 0 ;;
        centos:8)
            refuse "$system: CentOS 8 has reached its end of life (CentOS Linux 8 on 2021-12-31, CentOS \
Stream 8 on 2024-05-31) and cPanel & WHM no longer supports it: convert this server in place to AlmaLinux 8 \
with AlmaLinux's almalinux-deploy (https://github.com/AlmaLinux/almalinux-deploy), then run this script \
again; Imunify Email runs on $SUPPORTED_SYSTEMS with cPanel & WHM; nothing was changed" ;;
    esac
    # shellcheck disable=SC2086  # ID_LIKE is a space-separated list of IDs
    if [ "$major" = 7 ] && is_el_family "$id" $id_like; then
        refuse "$system: Imunify Email runs on the system's own Python 3.9 or newer, which no EL7 system \
has, so there is no package for EL7 (and CentOS 7 reached its end of life on 2024-06-30): upgrade this \
server in place with ELevate (cPanel's https://github.com/cpanel/elevate takes CentOS 7 to AlmaLinux 8 and \
CloudLinux 7 to CloudLinux 8, keeping cPanel & WHM), or move the accounts to a new server running \
$SUPPORTED_SYSTEMS with cPanel & WHM, then run this script there; nothing was changed"
    fi
    refuse "$system: Imunify Email runs on $SUPPORTED_SYSTEMS with cPanel & WHM only; nothing was changed"
}

check_cpanel() {
    [ -x "$CPANEL" ] || refuse "cPanel & WHM not found ($CPANEL): install cPanel & WHM first, then run this \
script again; nothing was changed"
}

check_memory() {
    local kb mb
    kb=$(awk '/^MemTotal:/ {print $2}' "$MEMINFO")
    [ -n "$kb" ] || refuse "cannot read the memory size from $MEMINFO"
    mb=$((kb / 1024))
    if [ "$mb" -lt "$MIN_MEMORY_MB" ]; then
        refuse "not enough memory: found $mb MB, Imunify Email needs at least $MIN_MEMORY_MB MB: add memory \
to this server and run the script again; nothing was changed"
    fi
    say "memory: $mb MB (needs $MIN_MEMORY_MB MB)"
}

check_disk() {
    local where=$ROOT/var kb gb
    kb=$(df -Pk "$where" | awk 'NR == 2 {print $4}')
    [ -n "$kb" ] || refuse "cannot read the free space of $where (df)"
    gb=$((kb / 1024 / 1024))
    if [ "$gb" -lt "$MIN_DISK_GB" ]; then
        say "WARNING: low disk space: found $gb GB free on the disk of $where, Imunify Email needs \
$MIN_DISK_GB GB (the quarantine keeps up to 100 MB per account by default): free some space or lower \
the quarantine limits (ie-cli accounts edit --limit) after the installation"
    else
        say "disk: $gb GB free on the disk of $where (needs $MIN_DISK_GB GB)"
    fi
}

# -- actions ----------------------------------------------------------------------------

installed_version() {
    rpm -q "$PACKAGE" 2>/dev/null
}

repo_text() {
    cat <<EOF
# Imunify Email packages (written by imunifyemail-deploy.sh). yum fills in \$releasever: this
# system's major version. Every package is signed with the key in gpgkey, published beside them. The
# repository's metadata is not signed, so repo_gpgcheck is left to this system's own setting (dnf.conf).
[imunifyemail]
name=Imunify Email
baseurl=$REPO_URL
enabled=1
gpgcheck=1
gpgkey=${REPO_URL}RPM-GPG-KEY-imunifyemail
EOF
}

ensure_repo() {
    if [ -f "$REPO_FILE" ] && [ "$(cat "$REPO_FILE")" = "$(repo_text)" ]; then
        return 1
    fi
    mkdir -p "$(dirname "$REPO_FILE")"
    repo_text >"$REPO_FILE"
    chmod 0644 "$REPO_FILE"
    say "package repository added: $REPO_FILE"
}

yum_run() {
    local status=0
    yum "$@" || status=$?
    if [ "$status" -ne 0 ]; then
        refuse "'yum $*' failed (exit status $status): see its messages above, fix the cause (network, \
repository, a conflicting package) and run this script again"
    fi
}

install() {
    check_os
    check_cpanel
    check_memory
    check_disk
    local repo_changed=no current
    if ensure_repo; then
        repo_changed=yes
    fi
    if current=$(installed_version); then
        if [ "$repo_changed" = no ]; then
            say "Imunify Email is already installed ($current): nothing to do"
        else
            say "Imunify Email is already installed ($current); only the repository file was restored"
        fi
        return 0
    fi
    say "installing Imunify Email (yum install $PACKAGE)"
    yum_run install -y "$PACKAGE"
    current=$(installed_version) || refuse "yum reported success but $PACKAGE is not installed: check \
'yum history' and run this script again"
    say "Imunify Email installed ($current): WHM -> Plugins -> Imunify Email; status: ie-config status"
}

uninstall() {
    local purge=$1 current
    if current=$(installed_version); then
        say "removing Imunify Email ($current) and what it pulled in (yum autoremove $PACKAGE)"
        yum_run autoremove -y "$PACKAGE"
    else
        say "Imunify Email is not installed: nothing to remove"
    fi
    if [ -f "$REPO_FILE" ]; then
        rm -f "$REPO_FILE"
        say "package repository removed: $REPO_FILE"
    fi
    if [ "$purge" = yes ]; then
        if [ -e "$STATE_DIR" ]; then
            rm -rf "$STATE_DIR"
            say "quarantine deleted: $STATE_DIR"
        fi
    elif [ -d "$STATE_DIR/quarantine" ]; then
        say "the quarantine is kept in $STATE_DIR/quarantine (delete it with: bash imunifyemail-deploy.sh \
--uninstall --purge)"
    fi
}

main() {
    local mode=install purge=no
    while [ $# -gt 0 ]; do
        case "$1" in
            --uninstall) mode=uninstall ;;
            --purge) purge=yes ;;
            -h | --help) usage; exit 0 ;;
            *) usage >&2; refuse "unknown option '$1': see --help" ;;
        esac
        shift
    done
    if [ "$purge" = yes ] && [ "$mode" != uninstall ]; then
        refuse "--purge goes with --uninstall (it deletes the quarantine): see --help"
    fi
    check_root
    if [ "$mode" = uninstall ]; then
        uninstall "$purge"
    else
        install
    fi
}

main "$@"
