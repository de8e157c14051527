#!/bin/bash
# Makes the RAUC development key pair (once, into the cache) and signed update bundles.
#
#   image/bundle.sh key                      prints the certificate the rootfs trusts
#   image/bundle.sh bundle ROOTFS.ext4 OUT.raucb VERSION
#
# A bundle's `compatible` is the one the rootfs inside it carries in /etc/rauc/system.conf
# (yakyak-arm64, yakyak-armhf), so an arm64 bundle is refused by an armhf box and back.
#
# The real signing key is never in the repository. Release builds name it with
# YAKYAK_RAUC_KEY and YAKYAK_RAUC_CERT (the certificate is installed in the rootfs as
# /etc/rauc/keyring.pem); without them a development pair is generated into
# .cache/image/rauc-dev/ and used for both.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

dev=$CACHE_DIR/rauc-dev
key=${YAKYAK_RAUC_KEY:-$dev/key.pem}
cert=${YAKYAK_RAUC_CERT:-$dev/cert.pem}

# A self-signed certificate that is its own keyring; "development" in the name so a box
# carrying it is recognisable (rauc status shows the signer).
make_pair() {  # dir, common name
    mkdir -p "$1"
    openssl req -x509 -newkey rsa:3072 -nodes -days 3650 -sha256 \
        -keyout "$1/key.pem" -out "$1/cert.pem" -subj "/O=YakYak/CN=$2" 2>/dev/null
    chmod 0600 "$1/key.pem"
}

case ${1:-} in
    key)
        if [ -z "${YAKYAK_RAUC_CERT:-}" ] && [ ! -f "$dev/cert.pem" ]; then
            make_pair "$dev" "YakYak development signing key (not for release)"
            note "RAUC: generated the development key pair in $dev"
        fi
        echo "$cert"
        ;;
    pair)  # another key pair (tests: a foreign signer)
        make_pair "${2:?dir}" "${3:-foreign signer}"
        ;;
    bundle)
        rootfs=${2:?rootfs ext4}; out=${3:?output .raucb}; version=${4:?version}
        "$0" key >/dev/null
        compatible=$(debugfs -R 'cat /etc/rauc/system.conf' "$rootfs" 2>/dev/null \
            | sed -n 's/^compatible=//p')
        [ -n "$compatible" ] || die "$rootfs: no compatible= in its /etc/rauc/system.conf"
        content=$(mktemp -d)
        trap 'rm -rf "$content"' EXIT
        ln "$rootfs" "$content/rootfs.ext4" 2>/dev/null || cp "$rootfs" "$content/rootfs.ext4"
        cat >"$content/manifest.raucm" <<MANIFEST
[update]
compatible=$compatible
version=$version
description=YakYak appliance root file system

[bundle]
format=verity

[image.rootfs]
filename=rootfs.ext4
MANIFEST
        rm -f "$out"
        rauc bundle --signing-keyring="$cert" --cert="${SIGN_CERT:-$cert}" --key="${SIGN_KEY:-$key}" \
            "$content" "$out"
        ;;
    *) die "usage: bundle.sh key | pair DIR [CN] | bundle ROOTFS.ext4 OUT.raucb VERSION" ;;
esac
