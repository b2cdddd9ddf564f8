//! The stdin side of a node: reads stdin in large blocks, splits them into lines, and hands
//! each block's broadcast lines over as one batch, end to end in one buffer (for
//! [`MeshSocket::send_many_packed`]); other lines (commands) are handed over one by one, in
//! their place among the lines.
//!
//! A `read` returns whatever the pipe or terminal holds, so a line typed by hand is handed
//! over as soon as it is read, alone in its batch; a program writing fast fills whole
//! blocks. The receiver of the batches waits while the node's queues are over their
//! high-water mark (`send_many` does), so stdin is read no faster than the network takes it.
//!
//! [`MeshSocket::send_many_packed`]: py2p::MeshSocket::send_many_packed

use std::borrow::Cow;
use std::io::{self, Read};

/// Bytes asked of stdin at once (a pipe holds 64 KiB by default).
const READ_BLOCK: usize = 64 * 1024;
/// Broadcast lines handed over in one batch at most.
const BATCH_LINES: usize = 1024;
/// Bytes of broadcast lines in one batch at most.
const BATCH_BYTES: usize = 256 * 1024;
/// A longer broadcast line is handed over on its own (as a command line is), to be sent
/// with `send` as every line was before batching.
const BATCH_LINE_MAX: usize = 64 * 1024;

/// Whether to go on reading.
pub(super) enum Flow {
    Go,
    Stop,
}

/// What the lines of stdin are handed to.
pub(super) trait Lines {
    /// Broadcast lines, each one message of one packet, in order: end to end in `block`,
    /// each ending where `ends` says (the first starting at 0).
    fn broadcasts(&mut self, block: Vec<u8>, ends: Vec<usize>) -> Flow;
    /// Any other line (a command, or text too long to batch), after the batch before it;
    /// invalid UTF-8 replaced.
    fn line(&mut self, line: &str) -> Flow;
}

/// Broadcast lines read but not yet handed over: their text end to end, and where each
/// ends (no allocation per line; the node frees the batch as one buffer).
#[derive(Default)]
struct Batch {
    block: Vec<u8>,
    ends: Vec<usize>,
}

impl Batch {
    fn push(&mut self, text: &[u8]) {
        if self.block.capacity() == 0 {
            self.block.reserve(READ_BLOCK);
        }
        self.block.extend_from_slice(text);
        self.ends.push(self.block.len());
    }

    fn full(&self) -> bool {
        self.ends.len() >= BATCH_LINES || self.block.len() >= BATCH_BYTES
    }

    fn flush(&mut self, lines: &mut impl Lines) -> Flow {
        if self.ends.is_empty() {
            return Flow::Go;
        }
        lines.broadcasts(
            std::mem::take(&mut self.block),
            std::mem::take(&mut self.ends),
        )
    }
}

/// Reads `input` to its end (or until told to stop), handing its lines to `lines`. A last
/// line without its newline is a line too.
pub(super) fn read_lines(mut input: impl Read, lines: &mut impl Lines) {
    let mut block = vec![0u8; READ_BLOCK];
    // The start of a line whose end has not been read yet.
    let mut partial: Vec<u8> = Vec::new();
    let mut batch = Batch::default();
    loop {
        let n = match input.read(&mut block) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let mut data = block.get(..n).unwrap_or_default();
        while let Some(end) = memchr::memchr(b'\n', data) {
            let (head, rest) = data.split_at(end);
            data = rest.get(1..).unwrap_or_default();
            let flow = if partial.is_empty() {
                line(lines, &mut batch, head)
            } else {
                partial.extend_from_slice(head);
                let flow = line(lines, &mut batch, &partial);
                partial.clear();
                flow
            };
            if let Flow::Stop = flow {
                return;
            }
        }
        partial.extend_from_slice(data);
        if let Flow::Stop = batch.flush(lines) {
            return;
        }
    }
    if !partial.is_empty() {
        if let Flow::Go = line(lines, &mut batch, &partial) {
            batch.flush(lines);
        }
    }
}

/// One line of input (without its newline): a broadcast joins the batch; any other line is
/// handed over after the lines before it.
fn line(lines: &mut impl Lines, batch: &mut Batch, raw: &[u8]) -> Flow {
    let bytes = raw.strip_suffix(b"\r").unwrap_or(raw);
    if is_broadcast(bytes) && bytes.len() <= BATCH_LINE_MAX && bytes.is_ascii() {
        // The usual line: ASCII text, UTF-8 as it is. `is_ascii` tests 265 bytes in 124
        // instructions, `str::from_utf8` in 201 (callgrind).
        batch.push(bytes);
        if batch.full() {
            return batch.flush(lines);
        }
        return Flow::Go;
    }
    // `str::from_utf8` checks ASCII a word at a time; `from_utf8_lossy` goes character
    // chunk by chunk (a quarter of this thread's time on 200-byte lines): it only runs on
    // text that is not UTF-8.
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    };
    if is_broadcast(bytes) && text.len() <= BATCH_LINE_MAX {
        // Invalid UTF-8 is sent as its lossy text, as the line always was.
        batch.push(text.as_bytes());
        if batch.full() {
            return batch.flush(lines);
        }
        return Flow::Go;
    }
    if let Flow::Stop = batch.flush(lines) {
        return Flow::Stop;
    }
    lines.line(&text)
}

/// Whether `line` is text to broadcast rather than a command: a command is a `/` and a name
/// before the first space (a lone `/` is text). The node's command parser asks it too.
pub(super) fn is_broadcast(line: &[u8]) -> bool {
    match line {
        [b'/', next, ..] => *next == b' ',
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_told_from_text_as_the_command_parser_tells_them() {
        for (line, text) in [
            ("hello", true),
            ("", true),
            ("/", true),
            ("/ x", true),
            (" /quit", true),
            ("a/b", true),
            ("/quit", false),
            ("/peers", false),
            ("/whisper id hi", false),
            ("/unknown", false),
            ("//", false),
        ] {
            // The parser's own rule: the head (up to the first space) is a command when it
            // starts with '/' and is longer than the slash.
            let head = line.split_once(' ').map_or(line, |(h, _)| h);
            assert_eq!(!(head.starts_with('/') && head.len() > 1), text, "{line:?}");
            assert_eq!(is_broadcast(line.as_bytes()), text, "{line:?}");
        }
    }

    /// What a reader was handed: batches and other lines, in order.
    #[derive(Default)]
    struct Record {
        got: Vec<Result<Vec<u8>, String>>,
        batches: usize,
    }

    impl Lines for Record {
        fn broadcasts(&mut self, block: Vec<u8>, ends: Vec<usize>) -> Flow {
            self.batches += 1;
            let mut start = 0;
            for end in ends {
                self.got.push(Ok(block[start..end].to_vec()));
                start = end;
            }
            Flow::Go
        }
        fn line(&mut self, line: &str) -> Flow {
            self.got.push(Err(line.to_owned()));
            if line == "/quit" {
                Flow::Stop
            } else {
                Flow::Go
            }
        }
    }

    /// Reads in pieces of at most `step` bytes, as a pipe may return them.
    struct Pieces<'a>(&'a [u8], usize);

    impl Read for Pieces<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(self.1).min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn lines_keep_their_order_and_place_in_any_split_of_the_input() {
        let long = vec![b'L'; BATCH_LINE_MAX + 1];
        let mut input = Vec::new();
        for i in 0..3_000 {
            input.extend_from_slice(format!("line {i}\r\n").as_bytes());
            if i == 10 {
                input.extend_from_slice(b"/peers\n");
            }
            if i == 20 {
                input.extend_from_slice(&long);
                input.push(b'\n');
            }
            if i == 30 {
                // UTF-8 that is not ASCII: batched too, as it is.
                input.extend_from_slice("naïve ☃\n".as_bytes());
            }
        }
        input.extend_from_slice(b"bad \xff\n/quit\nnever\n");
        for step in [1, 7, 200, READ_BLOCK, usize::MAX] {
            let mut r = Record::default();
            read_lines(Pieces(&input, step), &mut r);
            let mut want: Vec<Result<Vec<u8>, String>> = Vec::new();
            for i in 0..3_000 {
                want.push(Ok(format!("line {i}").into_bytes()));
                if i == 10 {
                    want.push(Err("/peers".into()));
                }
                if i == 20 {
                    want.push(Err(String::from_utf8(long.clone()).unwrap()));
                }
                if i == 30 {
                    want.push(Ok("naïve ☃".as_bytes().to_vec()));
                }
            }
            want.push(Ok("bad \u{fffd}".as_bytes().to_vec()));
            want.push(Err("/quit".into()));
            assert!(r.got == want, "step {step}");
            // Batches, not a hand-over per line, when the reads are large.
            if step >= 200 {
                assert!(r.batches < 3_000 / 2, "step {step}: {} batches", r.batches);
            }
        }
        // The end of input ends a last line without its newline.
        let mut r = Record::default();
        read_lines(Pieces(b"a\nb", 1), &mut r);
        assert!(r.got == [Ok(b"a".to_vec()), Ok(b"b".to_vec())]);
    }
}
