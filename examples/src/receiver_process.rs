//! The [`Receiver`] in a child process, so that a load test's own process holds
//! only the application and the exporter (the receiver still shares the
//! machine's cores).
//!
//! The parent starts a program that calls [`serve_child`], which prints the
//! receiver's endpoint on a line, then answers each `stats` line on its
//! standard input with the counters, and exits when its input closes.

use crate::receiver::{Fault, Receiver, ReceiverStats};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;

/// A receiver running in a child process; the child exits when this drops.
#[derive(Debug)]
pub struct ChildReceiver {
    endpoint: String,
    pipes: Mutex<(ChildStdin, BufReader<ChildStdout>)>,
    child: Child,
}

impl ChildReceiver {
    /// Starts `command` (a program that calls [`serve_child`]) and reads the
    /// endpoint it prints.
    pub fn spawn(mut command: Command) -> std::io::Result<ChildReceiver> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(std::io::Error::other("the child's pipes are missing"));
        };
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        let Some(endpoint) = line.trim().strip_prefix("endpoint ") else {
            let _ = child.kill();
            return Err(std::io::Error::other(format!(
                "the receiver process printed {line:?} instead of its endpoint"
            )));
        };
        Ok(ChildReceiver {
            endpoint: endpoint.to_string(),
            pipes: Mutex::new((stdin, stdout)),
            child,
        })
    }

    /// The URL to export to.
    pub fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    /// The child receiver's counters so far (all zero if it cannot be asked).
    pub fn stats(&self) -> ReceiverStats {
        self.ask().unwrap_or_default()
    }

    /// HTTP requests the child has read so far.
    pub fn requests(&self) -> u64 {
        self.stats().requests
    }

    fn ask(&self) -> Option<ReceiverStats> {
        let mut pipes = self.pipes.lock().unwrap_or_else(|e| e.into_inner());
        let (stdin, stdout) = &mut *pipes;
        stdin.write_all(b"stats\n").ok()?;
        stdin.flush().ok()?;
        let mut line = String::new();
        stdout.read_line(&mut line).ok()?;
        let n: Vec<u64> = line
            .split_whitespace()
            .map(|v| v.parse().ok())
            .collect::<Option<_>>()?;
        let [requests, unique_spans, duplicate_spans, rejected_spans, bad_requests] = n[..] else {
            return None;
        };
        Some(ReceiverStats {
            requests,
            unique_spans,
            duplicate_spans,
            rejected_spans,
            bad_requests,
        })
    }
}

impl Drop for ChildReceiver {
    /// Ends the child (hanging requests go with it).
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The child's side: starts a receiver with `fault`, prints `endpoint URL`,
/// then answers `stats` lines on standard input with the counters
/// (`requests unique duplicate rejected bad`, read by
/// [`ChildReceiver::stats`]) until the input closes.
pub fn serve_child(fault: Fault) -> std::io::Result<()> {
    let receiver = Receiver::start(fault, false)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "endpoint {}", receiver.endpoint())?;
    out.flush()?;
    for line in std::io::stdin().lock().lines() {
        if line?.trim() == "stats" {
            let s = receiver.stats();
            writeln!(
                out,
                "{} {} {} {} {}",
                receiver.requests(),
                s.unique_spans,
                s.duplicate_spans,
                s.rejected_spans,
                s.bad_requests
            )?;
            out.flush()?;
        }
    }
    Ok(())
}
