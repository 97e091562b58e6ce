//! Fuzzes `http::read_request`: the first byte of the input chooses how many bytes each read
//! hands out (1 to 256), the rest is what the client sends. Whatever the bytes, the parser
//! must return (never panic), take at most `MAX_HEAD` bytes, and give the same answer as when
//! the bytes arrive in one piece.
#![no_main]

use std::io::{self, Read};

use libfuzzer_sys::fuzz_target;
use tcp_server::http::{self, ReadError, MAX_HEAD};

/// Hands out `bytes` `piece` at a time, then end-of-file; counts what it handed out.
struct Pieces<'a> {
    bytes: &'a [u8],
    piece: usize,
    handed_out: usize,
}

impl Read for Pieces<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.piece.min(out.len()).min(self.bytes.len());
        out[..n].copy_from_slice(&self.bytes[..n]);
        self.bytes = &self.bytes[n..];
        self.handed_out += n;
        Ok(n)
    }
}

/// The answer, in a form two reads of the same bytes can be compared by.
fn answer(bytes: &[u8], piece: usize) -> (String, usize) {
    let mut reader = Pieces {
        bytes,
        piece,
        handed_out: 0,
    };
    let mut input = http::Input::new();
    let answer = match http::read_request(&mut reader, &mut input) {
        Ok((request, _)) => format!("{request:?}"),
        Err(ReadError::Rejected(rejection)) => format!("{}", rejection.status.code()),
        Err(other) => format!("{other:?}"),
    };
    (answer, reader.handed_out)
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, bytes)) = data.split_first() else {
        return;
    };
    let piece = usize::from(first) + 1;
    let (in_pieces, taken) = answer(bytes, piece);
    assert!(taken <= MAX_HEAD, "took {taken} bytes");
    let (at_once, _) = answer(bytes, usize::MAX);
    assert_eq!(in_pieces, at_once, "pieces of {piece}");
});
