//! The install script central serves at `/install.sh`.
//!
//! Its whole body is one function called on the last line, so a download cut short runs nothing.
//! It derives the host's target from `uname`, downloads that binary from central, checks it
//! against the SHA-256 the one-liner pinned (refusing a mismatch before anything runs), then
//! runs `mttrly-agent install`, which reads the install token from `MTTRLY_INSTALL_TOKEN`.
//! `--download-only DIR` stops after the check (and prints the binary's path).

/// Single-quotes a string for `sh`.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// curl's `--proto` for a base URL: HTTPS only, unless central itself is plain HTTP (a
/// development central on loopback), where the script may fetch over HTTP.
pub fn proto_of(base: &str) -> &'static str {
    if base.starts_with("https://") { "=https" } else { "=http" }
}

/// The script for a central at `base` (its HTTP base URL).
pub fn render(base: &str) -> String {
    let base = base.trim_end_matches('/');
    SCRIPT.replace("@BASE@", &sh_quote(base)).replace("@PROTO@", &sh_quote(proto_of(base)))
}

const SCRIPT: &str = r#"#!/bin/sh
# mttrly agent installer, served by mttrly central. Run it as `mttrly-cli servers add` prints:
#   curl -fsSL --proto '=https' CENTRAL/install.sh | MTTRLY_INSTALL_TOKEN=TOKEN sh -s -- \
#     --central GRPC_URL --sha256 TARGET=SHA256[,TARGET=SHA256...] [--ca-cert-b64 CA]
# The install token is read from MTTRLY_INSTALL_TOKEN (never a URL or an argument). The binary is
# checked against the pinned SHA-256 before it runs. --download-only DIR stops after the check.
# The whole script is one function called on the last line: a cut-off download runs nothing.
mttrly_install() {
    set -eu
    base=@BASE@
    proto=@PROTO@
    central=''
    pins=''
    ca=''
    download_only=''
    while [ $# -gt 0 ]; do
        case "$1" in
            --central) central="${2:-}"; shift 2 ;;
            --sha256) pins="${2:-}"; shift 2 ;;
            --ca-cert-b64) ca="${2:-}"; shift 2 ;;
            --download-only) download_only="${2:-}"; shift 2 ;;
            *) echo "mttrly install: unknown argument: $1" >&2; return 2 ;;
        esac
    done
    if [ -z "$pins" ]; then
        echo "mttrly install: --sha256 TARGET=SHA256 is required (the one-liner pins it)" >&2
        return 2
    fi
    arch=$(uname -m)
    os=$(uname -s | tr 'ABCDEFGHIJKLMNOPQRSTUVWXYZ' 'abcdefghijklmnopqrstuvwxyz')
    case "$arch" in
        amd64) arch=x86_64 ;;
        arm64) arch=aarch64 ;;
    esac
    target="$arch-$os"
    want=''
    for pin in $(echo "$pins" | tr ',' ' '); do
        case "$pin" in
            "$target="*) want="${pin#*=}" ;;
        esac
    done
    if [ -z "$want" ]; then
        echo "mttrly install: central pinned no binary for this host's target $target (pinned: $pins)" >&2
        return 1
    fi
    if [ -n "$download_only" ]; then
        dir="$download_only"
        mkdir -p "$dir"
    else
        dir=$(mktemp -d)
    fi
    bin="$dir/mttrly-agent"
    if ! curl -fsSL --proto "$proto" -o "$bin" "$base/dist/mttrly-agent/$target"; then
        echo "mttrly install: cannot download the agent for $target from $base" >&2
        return 1
    fi
    if command -v sha256sum >/dev/null 2>&1; then
        got=$(sha256sum "$bin" | cut -d ' ' -f 1)
    else
        got=$(shasum -a 256 "$bin" | cut -d ' ' -f 1)
    fi
    if [ "$got" != "$want" ]; then
        rm -f "$bin"
        echo "mttrly install: SHA-256 mismatch for $target: pinned $want, downloaded $got; nothing was installed" >&2
        return 1
    fi
    chmod 0755 "$bin"
    if [ -n "$download_only" ]; then
        echo "$bin"
        return 0
    fi
    if [ -z "$central" ]; then
        echo "mttrly install: --central GRPC_URL is required" >&2
        return 2
    fi
    if [ -z "${MTTRLY_INSTALL_TOKEN:-}" ]; then
        echo "mttrly install: set MTTRLY_INSTALL_TOKEN to the install token" >&2
        return 2
    fi
    status=0
    if [ -n "$ca" ]; then
        "$bin" install --central "$central" --ca-cert-b64 "$ca" || status=$?
    else
        "$bin" install --central "$central" || status=$?
    fi
    rm -rf "$dir"
    return "$status"
}
mttrly_install "$@"
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_is_one_function_called_on_its_last_line() {
        let script = render("https://mttrly.example.com/");
        let lines: Vec<&str> = script.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.last(), Some(&"mttrly_install \"$@\""));
        // Only comments and the function come before the call.
        let body_start = lines.iter().position(|l| l.starts_with("mttrly_install() {")).expect("function");
        assert!(lines[..body_start].iter().all(|l| l.starts_with('#')));
        assert!(script.contains("base='https://mttrly.example.com'\n"), "{script}");
        assert!(script.contains("proto='=https'\n"));
        assert!(render("http://127.0.0.1:8080").contains("proto='=http'\n"));
        // Never a token in a URL.
        assert!(!script.contains("token="));
    }

    #[test]
    fn quoting_survives_a_quote() {
        assert_eq!(sh_quote("a'b"), r"'a'\''b'");
        assert!(render("https://x/'; rm -rf ~").contains(r"base='https://x/'\''; rm -rf ~'"));
    }
}
