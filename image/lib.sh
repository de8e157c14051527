# shellcheck shell=bash
# Helpers shared by the image scripts: paths, the input hash the caches are keyed by,
# and the progress display (one line per step; a live elapsed-time line on a terminal).

IMAGE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$IMAGE_DIR/.." && pwd)
CACHE_DIR=${YAKYAK_IMAGE_CACHE:-$REPO_DIR/.cache/image}
OUT_DIR=${YAKYAK_IMAGE_OUT:-$REPO_DIR/build/image}
SUITE=bookworm
MIRROR=${YAKYAK_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${YAKYAK_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

die() { echo "image: $*" >&2; exit 1; }
note() { echo "image: $*" >&2; }

host_arch() { dpkg --print-architecture; }

# sha256 over the named files and trees (sorted paths and their contents), caches
# and pyc files left out. Prints the first 16 hex digits.
hash_tree() {
    (cd "$REPO_DIR" && find "$@" -type f ! -path '*/__pycache__/*' ! -name '*.pyc' \
        ! -name '*.egg-info' ! -path 'image/README.md' -print0 \
        | LC_ALL=C sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-16
}

# What the appliance's wheel is built from.
python_inputs() { echo pyproject.toml README.md appliance board; }

# Runs "$@" with its output in LOG, showing STEP and the seconds spent; on a terminal the
# line is redrawn every second with the log's last line. On failure the log's tail is shown.
STEP_NO=0
STEP_TOTAL=${STEP_TOTAL:-0}
run_step() {
    local title=$1 log=$2; shift 2
    STEP_NO=$((STEP_NO + 1))
    local tag="[$STEP_NO/$STEP_TOTAL]" start=$SECONDS pid rc
    mkdir -p "$(dirname "$log")"
    echo "==> $tag $title (log: ${log#"$REPO_DIR"/})" >&2
    "$@" >"$log" 2>&1 &
    pid=$!
    if [ -t 2 ]; then
        while kill -0 "$pid" 2>/dev/null; do
            local last
            last=$(tail -n 1 "$log" 2>/dev/null | tr -d '\r' | cut -c1-70)
            printf '\r\033[K    %4ds  %s' "$((SECONDS - start))" "$last" >&2
            sleep 1
        done
        printf '\r\033[K' >&2
    fi
    rc=0
    wait "$pid" || rc=$?
    if [ "$rc" -ne 0 ]; then
        echo "    FAILED after $((SECONDS - start)) s (exit $rc); last lines of $log:" >&2
        tail -n 25 "$log" >&2
        exit "$rc"
    fi
    echo "    done in $((SECONDS - start)) s" >&2
}

# Foreign architectures run their maintainer scripts through qemu-user: binfmt_misc
# must be mounted and the qemu handlers enabled (issue #8).
ensure_binfmt() {
    local arch=$1 qarch
    [ "$arch" = "$(host_arch)" ] && return 0
    case $arch in
        arm64) qarch=aarch64 ;;
        armhf) qarch=arm ;;
        *) die "no qemu-user mapping for $arch" ;;
    esac
    [ -e /proc/sys/fs/binfmt_misc/register ] \
        || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc \
        || die "cannot mount binfmt_misc (needs root)"
    if ! grep -q enabled "/proc/sys/fs/binfmt_misc/qemu-$qarch" 2>/dev/null; then
        update-binfmts --enable "qemu-$qarch" || die "update-binfmts --enable qemu-$qarch failed"
    fi
}
