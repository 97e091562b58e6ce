#!/usr/bin/env bash
# Lists the code blocks of the built book that do not fit their column, at a window width
# (default 1200 px), as headless Chromium lays the page out. The load test's tables must fit;
# a single long line (a JSON body, a curl -v header) may scroll.
#
#   scripts/book_width.sh [WIDTH]
#
# Needs mdbook (see docs/CONTRIBUTING.md) and Chromium (Debian: apt-get install chromium).
# Not part of CI: it needs a browser.
set -euo pipefail
cd "$(dirname "$0")/.."
width=${1:-1200}
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
[[ -n $browser ]] || { echo "book_width.sh: no chromium on PATH" >&2; exit 2; }

mdbook build docs >/dev/null 2>&1 || { echo "book_width.sh: mdbook build docs failed" >&2; exit 2; }
profile=$(mktemp -d)
trap 'rm -rf "$profile" target/book/width-probe-*.html' EXIT

# The probe: after the page is laid out, one line per code block wider than its box.
probe='<script>addEventListener("load",()=>{const out=[];
document.querySelectorAll("pre > code").forEach((c,i)=>{if(c.scrollWidth>c.clientWidth+1)
out.push("block "+i+": "+c.scrollWidth+" px in "+c.clientWidth+": "+c.textContent.split("\\n")[0].slice(0,60))});
const d=document.createElement("pre");d.id="width-probe";d.textContent="PROBE\\n"+out.map(l=>l+"\\n").join("")+"END";
document.body.appendChild(d)})</script>'

for page in target/book/0*.html; do
    name=$(basename "$page")
    copy=target/book/width-probe-$name
    sed "s#</body>#${probe//$'\n'/}</body>#" "$page" >"$copy"
    echo "== $name at $width px"
    # The flags keep Chromium off the network (it has no reason to leave loopback).
    "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$profile" --window-size="$width,900" --virtual-time-budget=3000 \
        --dump-dom "file://$PWD/$copy" 2>/dev/null |
        sed -n '/width-probe">PROBE$/,/^END</p' | sed '1d;$d' | sed 's/&gt;/>/g; s/&lt;/</g; s/&amp;/\&/g'
done
