//! The one inline script and the one inline stylesheet every document carries, and their CSP hashes.
//!
//! Both are constants so that a single Content-Security-Policy (computed here at compile time)
//! covers every map and chart this crate writes: the server can send it for any file under
//! `visualizations/` without reading the file. Per-map colours therefore live in SVG presentation
//! attributes (`fill="#…"`), which CSP does not govern, never in `style` attributes or in the
//! stylesheet.

/// The inline stylesheet, emitted byte for byte as `<style>{STYLE}</style>`.
pub const STYLE: &str = "\
*{box-sizing:border-box}\
body{margin:0;font:14px/1.4 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#222;background:#fff}\
main{padding:12px;max-width:1600px;margin:0 auto}\
h1{font-size:1.25rem;margin:0 0 4px}\
h2{font-size:1.05rem;margin:0 0 6px}\
p.sub{margin:0 0 10px;color:#555}\
.maps{display:flex;flex-wrap:wrap;gap:16px}\
figure{margin:0;flex:1 1 420px;min-width:280px}\
svg.map{max-height:85vh}\
svg.map,svg.chart{width:100%;height:auto;display:block;background:#fafafa;border:1px solid #ddd;border-radius:4px}\
svg.map path,svg.shapes path{vector-effect:non-scaling-stroke;fill-rule:evenodd;stroke-linejoin:round}\
svg.map g{stroke:#fff;stroke-width:.6px}\
svg.map path:hover,svg.map use:hover{stroke:#000;stroke-width:2px}\
svg.map g.lga{stroke:#222;stroke-width:2.2px;fill:none;pointer-events:none}\
svg.map g.lga path:hover{stroke:#222;stroke-width:2.2px}\
svg.map g.faint{opacity:.25}\
svg.shapes{position:absolute;width:0;height:0;overflow:hidden}\
svg.chart text{font-size:11px;fill:#333}\
svg.chart .ax{stroke:#999;stroke-width:1px}\
svg.chart .grid{stroke:#e3e3e3;stroke-width:1px}\
svg.chart g.row:hover rect,svg.chart g.row:hover line{stroke:#000}\
ul.legend{list-style:none;margin:8px 0 0;padding:0;display:flex;flex-wrap:wrap;gap:4px 14px;font-size:.9rem}\
ul.legend li{display:flex;align-items:center;gap:6px}\
svg.sw{width:18px;height:14px;border:1px solid #bbb;flex:none}\
svg.ramp{width:220px;height:14px;border:1px solid #bbb;flex:none}\
.note{color:#666;font-size:.85rem;margin:6px 0 0}\
.panel{border:1px solid #ddd;border-radius:4px;padding:8px 10px;margin:0 0 12px;background:#f7f7f7}\
.stats{display:flex;flex-wrap:wrap;gap:6px 22px;margin:0 0 10px}\
.stats div{display:flex;flex-direction:column}\
.stats span{color:#555;font-size:.8rem}\
form.itn{display:flex;flex-wrap:wrap;gap:8px;align-items:end}\
form.itn label{display:flex;flex-direction:column;font-size:.85rem}\
form.itn input,form.itn select{font:inherit;padding:4px 6px;min-width:8em}\
form.itn button{font:inherit;padding:6px 14px;cursor:pointer}\
#itn-status{min-height:1.2em;margin:6px 0 0;font-size:.9rem}\
#tip{position:fixed;z-index:10;max-width:280px;padding:6px 8px;background:rgba(20,20,20,.92);color:#fff;\
border-radius:4px;font-size:.85rem;white-space:pre-line;pointer-events:none}\
#tip[hidden]{display:none}\
@media (max-width:600px){main{padding:6px}figure{flex-basis:100%}}";

/// The inline script, emitted byte for byte as `<script>{SCRIPT}</script>`.
///
/// It shows a tap tooltip (from the shape's `<title>`; mouse users also get the native one) and,
/// when the page has the ITN form, posts the new parameters as JSON to the form's `action`. It
/// reads everything from the DOM, so it never changes with the data and its hash stays valid.
pub const SCRIPT: &str = r#"(function(){"use strict";
var tip=document.getElementById("tip");
function hide(){if(tip){tip.hidden=true;}}
document.addEventListener("click",function(e){
var el=e.target&&e.target.closest?e.target.closest("[data-i]"):null;
if(!el||!tip){hide();return;}
var t=el.querySelector("title");if(!t){hide();return;}
tip.textContent=t.textContent;tip.hidden=false;
var x=e.clientX+12,y=e.clientY+12,w=tip.offsetWidth,h=tip.offsetHeight;
if(x+w>window.innerWidth-4){x=Math.max(4,e.clientX-w-12);}
if(y+h>window.innerHeight-4){y=Math.max(4,e.clientY-h-12);}
tip.style.left=x+"px";tip.style.top=y+"px";});
document.addEventListener("keydown",function(e){if(e.key==="Escape"){hide();}});
window.addEventListener("scroll",hide,{passive:true});
var f=document.getElementById("itn-form");
if(!f){return;}
var st=document.getElementById("itn-status");
function say(m){if(st){st.textContent=m;}}
f.addEventListener("submit",function(e){
e.preventDefault();
var n=parseInt(f.elements.total_nets.value,10);
var u=parseFloat(f.elements.urban_threshold.value);
var h=parseFloat(f.elements.avg_household_size.value);
if(!(n>0)){say("Enter a positive number of nets.");return;}
if(!(u>=0&&u<=100)){say("The urban threshold is a percentage between 0 and 100.");return;}
if(!(h>0)){say("Enter a positive household size.");return;}
var body={total_nets:n,urban_threshold:u,avg_household_size:h};
if(f.elements.method&&f.elements.method.value){body.method=f.elements.method.value;}
if(f.elements.strategy&&f.elements.strategy.value){body.strategy=f.elements.strategy.value;}
var b=f.querySelector("button");if(b){b.disabled=true;}
say("Recomputing the distribution\u2026");
fetch(f.getAttribute("action"),{method:"POST",credentials:"same-origin",
headers:{"Content-Type":"application/json","Accept":"application/json"},body:JSON.stringify(body)})
.then(function(r){return r.json().catch(function(){return {};}).then(function(j){return {ok:r.ok,code:r.status,j:j};});})
.then(function(x){
if(b){b.disabled=false;}
var j=x.j||{};
if(x.ok&&j.status==="success"){
var u2=j.map_url||j.map_path;
if(typeof u2==="string"&&u2.charAt(0)==="/"&&u2.charAt(1)!=="/"&&u2.charAt(1)!=="\\"){window.location.assign(u2);return;}
say("Updated. Reload the map to see the new distribution.");return;}
say("Update failed: "+(j.message||j.error||("HTTP "+x.code)));})
.catch(function(){if(b){b.disabled=false;}say("Update failed: the server could not be reached.");});});
})();"#;

const SCRIPT_HASH: [u8; 44] = base64_32(&sha256(SCRIPT.as_bytes()));
const STYLE_HASH: [u8; 44] = base64_32(&sha256(STYLE.as_bytes()));

/// Base64 SHA-256 of [`SCRIPT`], as CSP wants it after `'sha256-`.
pub const SCRIPT_SHA256: &str = ascii(&SCRIPT_HASH);
/// Base64 SHA-256 of [`STYLE`], as CSP wants it after `'sha256-`.
pub const STYLE_SHA256: &str = ascii(&STYLE_HASH);

/// The Content-Security-Policy header value under which every document of this crate works.
///
/// Nothing is loaded from anywhere (`default-src 'none'`); the only script and stylesheet are the
/// hashed inline ones; `connect-src 'self'` and `form-action 'self'` let the ITN form post back to
/// the same origin; `frame-ancestors 'self'` lets the app embed the map in an iframe.
pub fn content_security_policy() -> String {
    format!(
        "default-src 'none'; script-src 'sha256-{SCRIPT_SHA256}'; style-src 'sha256-{STYLE_SHA256}'; \
         img-src data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'self'"
    )
}

const fn ascii(bytes: &'static [u8]) -> &'static str {
    match core::str::from_utf8(bytes) {
        Ok(s) => s,
        // Base64 output is ASCII by construction; this arm cannot be reached at compile time.
        Err(_) => "",
    }
}

const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

/// SHA-256 (FIPS 180-4), as a `const fn` so the CSP hashes can never drift from the constants.
pub(crate) const fn sha256(data: &[u8]) -> [u8; 32] {
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let len = data.len();
    let blocks = (len + 9).div_ceil(64);
    let total = blocks * 64;
    let bit_len = (len as u64).wrapping_mul(8);
    let mut b = 0;
    while b < blocks {
        let mut w = [0u32; 64];
        let mut i = 0;
        while i < 16 {
            let mut word = 0u32;
            let mut j = 0;
            while j < 4 {
                let pos = b * 64 + i * 4 + j;
                let byte = if pos < len {
                    data[pos]
                } else if pos == len {
                    0x80
                } else if pos >= total - 8 {
                    (bit_len >> (8 * (total - 1 - pos))) as u8
                } else {
                    0
                };
                word = (word << 8) | byte as u32;
                j += 1;
            }
            w[i] = word;
            i += 1;
        }
        while i < 64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
            i += 1;
        }
        let (mut a, mut bb, mut c, mut d, mut e, mut f, mut g, mut hh) =
            (h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]);
        i = 0;
        while i < 64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & bb) ^ (a & c) ^ (bb & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = bb;
            bb = a;
            a = t1.wrapping_add(t2);
            i += 1;
        }
        h[0] = h[0].wrapping_add(a);
        h[1] = h[1].wrapping_add(bb);
        h[2] = h[2].wrapping_add(c);
        h[3] = h[3].wrapping_add(d);
        h[4] = h[4].wrapping_add(e);
        h[5] = h[5].wrapping_add(f);
        h[6] = h[6].wrapping_add(g);
        h[7] = h[7].wrapping_add(hh);
        b += 1;
    }
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 8 {
        let bytes = h[i].to_be_bytes();
        out[i * 4] = bytes[0];
        out[i * 4 + 1] = bytes[1];
        out[i * 4 + 2] = bytes[2];
        out[i * 4 + 3] = bytes[3];
        i += 1;
    }
    out
}

/// Standard base64 (with padding) of a 32-byte digest: always 44 characters.
pub(crate) const fn base64_32(input: &[u8; 32]) -> [u8; 44] {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = [b'='; 44];
    let mut i = 0;
    let mut o = 0;
    while i + 3 <= 32 {
        let n = ((input[i] as u32) << 16) | ((input[i + 1] as u32) << 8) | input[i + 2] as u32;
        out[o] = ALPHABET[(n >> 18) as usize & 63];
        out[o + 1] = ALPHABET[(n >> 12) as usize & 63];
        out[o + 2] = ALPHABET[(n >> 6) as usize & 63];
        out[o + 3] = ALPHABET[n as usize & 63];
        i += 3;
        o += 4;
    }
    // 32 = 30 + 2: two bytes remain, giving three characters and one '='.
    let n = ((input[30] as u32) << 16) | ((input[31] as u32) << 8);
    out[o] = ALPHABET[(n >> 18) as usize & 63];
    out[o + 1] = ALPHABET[(n >> 12) as usize & 63];
    out[o + 2] = ALPHABET[(n >> 6) as usize & 63];
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn hex(d: &[u8]) -> String {
        d.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn sha256_known_vectors() {
        assert_eq!(
            hex(&sha256(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        // 56 bytes: the padding spills into a second block.
        assert_eq!(
            hex(&sha256(
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            )),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
        let million_a = vec![b'a'; 1_000_000];
        assert_eq!(
            hex(&sha256(&million_a)),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        );
    }

    #[test]
    fn base64_of_digest() {
        // Base64 of SHA-256("abc") as published in CSP examples.
        let b = base64_32(&sha256(b"abc"));
        assert_eq!(
            std::str::from_utf8(&b).unwrap(),
            "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
        );
    }

    #[test]
    fn policy_carries_both_hashes_and_nothing_external() {
        let p = content_security_policy();
        assert!(p.contains(&format!("'sha256-{SCRIPT_SHA256}'")));
        assert!(p.contains(&format!("'sha256-{STYLE_SHA256}'")));
        assert_eq!(SCRIPT_SHA256.len(), 44);
        assert!(!p.contains("unsafe"));
        assert!(!p.contains("http"));
    }

    #[test]
    fn script_and_style_are_ascii_and_reference_nothing_external() {
        for s in [SCRIPT, STYLE] {
            assert!(s.is_ascii());
            assert!(!s.contains("http:") && !s.contains("https:") && !s.contains("url("));
            assert!(!s.contains("</"));
        }
    }

    /// Cross-check against the system tool when present, so the hash is not only self-consistent.
    #[test]
    fn script_hash_matches_sha256sum_when_available() {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let Ok(mut child) = Command::new("sha256sum")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
        else {
            return;
        };
        child
            .stdin
            .take()
            .unwrap()
            .write_all(SCRIPT.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        assert_eq!(
            text.split_whitespace().next().unwrap(),
            hex(&sha256(SCRIPT.as_bytes()))
        );
    }
}
