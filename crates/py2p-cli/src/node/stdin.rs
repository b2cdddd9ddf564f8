//! The stdin side of a node: reads stdin in large blocks, splits them into lines, and hands
//! the node each block's broadcast lines as one batch ([`MeshSocket::send_many`]); commands
//! are carried out one by one, in their place among the lines.
//!
//! A `read` returns whatever the pipe or terminal holds, so a line typed by hand is sent
//! as soon as it is read, alone in its batch; a program writing fast fills whole blocks.
//! `send_many` waits while the node's queues are over their high-water mark, so stdin is
//! read no faster than the network takes it.
//!
//! [`MeshSocket::send_many`]: py2p::MeshSocket::send_many

use std::io::{self, Read};
use std::sync::mpsc::Sender;

use super::{command, error_json, lossy, print_line, Node};

/// Bytes asked of stdin at once (a pipe holds 64 KiB by default).
const READ_BLOCK: usize = 64 * 1024;
/// Broadcast lines handed to the node in one batch at most.
const BATCH_LINES: usize = 1024;
/// Bytes of broadcast lines in one batch at most.
const BATCH_BYTES: usize = 256 * 1024;
/// A longer line is sent on its own (`send`), as every line was before batching.
const BATCH_LINE_MAX: usize = 64 * 1024;

/// Whether to go on reading.
enum Flow {
    Go,
    Stop,
}

/// Broadcast lines read but not yet handed to the node.
struct Batch {
    messages: Vec<Vec<Vec<u8>>>,
    bytes: usize,
}

impl Batch {
    fn new() -> Batch {
        Batch {
            messages: Vec::new(),
            bytes: 0,
        }
    }

    /// Hands the batch to the node. Stops once the node is closed.
    fn flush(&mut self, node: &Node) -> Flow {
        if self.messages.is_empty() {
            return Flow::Go;
        }
        self.bytes = 0;
        let messages = std::mem::replace(&mut self.messages, Vec::with_capacity(BATCH_LINES));
        let mesh = node.mesh();
        if mesh.is_closed() {
            return Flow::Stop;
        }
        if let Err(e) = mesh.send_many(messages) {
            if mesh.is_closed() {
                return Flow::Stop;
            }
            print_line(&error_json(e));
        }
        Flow::Go
    }
}

/// Reads stdin's lines and carries each out, until `/quit` (which it passes on) or the node
/// closes. At the end of input the node keeps running until `/quit` or a signal.
pub(super) fn stdin_commands(node: &Node, quit: &Sender<()>) {
    let stdin = io::stdin();
    let mut input = stdin.lock();
    let mut block = vec![0u8; READ_BLOCK];
    // The start of a line whose end has not been read yet.
    let mut partial: Vec<u8> = Vec::new();
    let mut batch = Batch::new();
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
                line(node, quit, &mut batch, head)
            } else {
                partial.extend_from_slice(head);
                let flow = line(node, quit, &mut batch, &partial);
                partial.clear();
                flow
            };
            if let Flow::Stop = flow {
                return;
            }
        }
        partial.extend_from_slice(data);
        if let Flow::Stop = batch.flush(node) {
            return;
        }
    }
    // The last line, when the input does not end with a newline.
    if !partial.is_empty() {
        if let Flow::Go = line(node, quit, &mut batch, &partial) {
            batch.flush(node);
        }
    }
}

/// One line of input (without its newline): a broadcast joins the batch; a command is
/// carried out after the lines before it were handed over.
fn line(node: &Node, quit: &Sender<()>, batch: &mut Batch, raw: &[u8]) -> Flow {
    let bytes = raw.strip_suffix(b"\r").unwrap_or(raw);
    if is_broadcast(bytes) && bytes.len() <= BATCH_LINE_MAX {
        // Invalid UTF-8 is sent as its lossy text, as the line always was.
        let text = match lossy(bytes) {
            std::borrow::Cow::Borrowed(_) => bytes.to_vec(),
            std::borrow::Cow::Owned(s) => s.into_bytes(),
        };
        batch.bytes += text.len();
        batch.messages.push(vec![text]);
        if batch.messages.len() >= BATCH_LINES || batch.bytes >= BATCH_BYTES {
            return batch.flush(node);
        }
        return Flow::Go;
    }
    if let Flow::Stop = batch.flush(node) {
        return Flow::Stop;
    }
    let line = lossy(bytes);
    if line == "/quit" {
        let _ = quit.send(());
        return Flow::Stop;
    }
    if node.mesh().is_closed() {
        return Flow::Stop;
    }
    if let Some(v) = command(node, &line) {
        if node.mesh().is_closed() {
            return Flow::Stop;
        }
        print_line(&v);
    }
    Flow::Go
}

/// Whether `line` is text to broadcast rather than a command: commands are a `/` and a
/// name before the first space (a lone `/` is text), as [`command`] reads them.
fn is_broadcast(line: &[u8]) -> bool {
    match line {
        [b'/', next, ..] => *next == b' ',
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::is_broadcast;

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
}
