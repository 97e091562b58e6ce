//! Fuzzes the chunked body decoder, `body::Body`: the first byte of the input chooses how many
//! bytes each piece has (1 to 256), the rest is what the client sends after a head that said
//! `Transfer-Encoding: chunked`. Whatever the bytes, the decoder must return (never panic),
//! never take more bytes than it was given, and give the same answer as when the bytes arrive
//! in one piece.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tcp_server::http::body::{Body, Framing};

/// The decoder's answer to `bytes` fed `piece` at a time: the rejection's status, or the bytes
/// taken and whether the body ended.
fn answer(bytes: &[u8], piece: usize) -> Result<(usize, bool), u16> {
    let mut body = Body::new(Framing::Chunked);
    let mut at = 0;
    while at < bytes.len() && !body.is_done() {
        let part = &bytes[at..bytes.len().min(at + piece)];
        let taken = body.take(part).map_err(|r| r.status.code())?;
        assert!(taken <= part.len(), "took {taken} of {} bytes", part.len());
        at += taken;
    }
    Ok((at, body.is_done()))
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, bytes)) = data.split_first() else {
        return;
    };
    let piece = usize::from(first) + 1;
    assert_eq!(answer(bytes, piece), answer(bytes, usize::MAX), "pieces of {piece}");
});
